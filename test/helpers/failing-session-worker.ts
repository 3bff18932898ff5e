/// <reference lib="webworker" />
import process from "node:process";
import { SessionRunner } from "../../workers/session-runner.ts";
import type { RunnerConfig, ToRunner } from "../../workers/types.ts";

/**
 * The session worker, except that a session from 192.0.2.66 makes it throw outside any
 * handler, as a bug in a worker would: the pool must survive it.
 */
const scope = self as unknown as { onmessage: ((event: MessageEvent) => void) | null; postMessage(message: unknown): void };

let runner: SessionRunner | undefined;
scope.onmessage = (event: MessageEvent) => {
  if (runner === undefined) {
    runner = new SessionRunner(event.data as RunnerConfig, (message) => scope.postMessage(message), process.pid);
    return;
  }
  const message = event.data as ToRunner;
  if (message.t === "open" && message.client.address === "192.0.2.66") {
    setTimeout(() => {
      throw new Error("simulated bug in a session worker");
    });
  }
  runner.handle(message);
};
