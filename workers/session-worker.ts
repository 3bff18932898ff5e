/// <reference lib="webworker" />
import process from "node:process";
import { bugFields } from "../src/log/bug.ts";
import { SessionRunner } from "./session-runner.ts";
import type { RunnerConfig, ToRunner } from "./types.ts";

/** A Web Worker running sessions: the first message is its config, every later one a ToRunner. */
const scope = self as unknown as {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
};

let runner: SessionRunner | undefined;

// A rejection nothing handled is a bug of ours: logged with its stack; the worker and its sessions go on.
process.on("unhandledRejection", (error: unknown) => scope.postMessage({ t: "bug", entry: { event: "BUG", ...bugFields(error) } }));

scope.onmessage = (event: MessageEvent) => {
  if (runner === undefined) {
    runner = new SessionRunner(event.data as RunnerConfig, (message) => scope.postMessage(message), process.pid);
    return;
  }
  runner.handle(event.data as ToRunner);
};
