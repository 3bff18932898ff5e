import process from "node:process";
import type { DnsObserver } from "../src/dns/resolver.ts";
import type { DnsAnswer, DnsType } from "../src/dns/types.ts";
import type { LogEntry } from "../src/log/logger.ts";
import type { ClientInfo, GateFacts } from "../src/smtp/types.ts";
import { SessionRunner } from "./session-runner.ts";
import type { FromRunner, RunnerConfig, SessionHandle, SessionPool, SessionSink, ToRunner } from "./types.ts";

interface Lane {
  send(message: ToRunner, transfer?: ArrayBuffer[]): void;
  /** Set when its worker died; its sessions are failed and a new lane takes its place. */
  dead: boolean;
  /** A worker gets its own copy of each read, transferred; the inline runner reads it before returning. */
  readonly copies: boolean;
  sessions: number;
  terminate(): void;
}

export interface PoolOptions {
  readonly observeDns?: DnsObserver;
  /** A worker died and was replaced. */
  readonly onWorkerFailed?: (reason: string, sessions: number) => void;
  /** A runner's note for the operator. */
  readonly onNote?: (level: "info" | "warn", message: string) => void;
  /** A worker caught an error nothing handled (a bug of ours); it goes on. */
  readonly onBug?: (entry: LogEntry) => void;
  /** The worker script; tests give one that can be made to fail. */
  readonly workerUrl?: URL;
}

/**
 * Spreads sessions over `workers` Web Workers (0: one inline runner on this thread, through
 * the same messages). Sockets cannot move between threads in Deno or Bun, so bytes travel
 * over the worker's port in transferred buffers. A worker that dies takes only its own
 * sessions with it (their clients get a 421): a new one takes its place.
 */
export function createPool(config: RunnerConfig, workers: number, options: PoolOptions = {}): SessionPool {
  const observeDns = options.observeDns ?? (() => {});
  const workerUrl = options.workerUrl ?? new URL("./session-worker.ts", import.meta.url);
  const sinks = new Map<number, { sink: SessionSink; lane: Lane }>();
  let nextId = 1;
  let idle: (() => void) | undefined;

  const dispatch = (message: FromRunner) => {
    if (message.t === "dns") {
      return observeDns(message.type as DnsType, message.status as DnsAnswer["status"], message.seconds, message.name);
    }
    if (message.t === "bug") return options.onBug?.(message.entry);
    if (message.t === "note") return options.onNote?.(message.level, message.message);
    const entry = sinks.get(message.id);
    if (!entry) return;
    switch (message.t) {
      case "write":
        return entry.sink.write(message.text, message.pace);
      case "close":
        return entry.sink.close();
      case "starttls":
        return entry.sink.starttls(message.text);
      case "pause":
        return entry.sink.pause();
      case "resume":
        return entry.sink.resume();
      case "log":
        return entry.sink.log(message.entry);
      case "greylist":
        // The store fails open itself; a rejection here would be a bug, and must not hold the client.
        return void entry.sink.greylist(message.triplet).catch(() => "pass" as const).then((verdict) =>
          entry.lane.send({ t: "greylisted", id: message.id, verdict })
        );
      case "end":
        sinks.delete(message.id);
        entry.lane.sessions--;
        entry.sink.end(message.facts);
        if (sinks.size === 0) idle?.();
        return;
    }
  };

  const replace = (lane: Lane, reason: string) => {
    if (lane.dead) return;
    lane.dead = true;
    lane.terminate();
    const lost = [...sinks].filter(([, entry]) => entry.lane === lane);
    for (const [id, entry] of lost) {
      sinks.delete(id);
      entry.sink.failed(reason);
    }
    lanes[lanes.indexOf(lane)] = workerLane(config, workerUrl, dispatch, replace);
    options.onWorkerFailed?.(reason, lost.length);
    if (sinks.size === 0) idle?.();
  };
  const lanes: Lane[] = workers === 0
    ? [inlineLane(config, dispatch)]
    : Array.from({ length: workers }, () => workerLane(config, workerUrl, dispatch, replace));

  return {
    size: workers,
    open(client: ClientInfo, gate: GateFacts, early: Uint8Array | undefined, sink: SessionSink): SessionHandle {
      const id = nextId++;
      const lane = lanes.reduce((a, b) => (b.sessions < a.sessions ? b : a));
      lane.sessions++;
      sinks.set(id, { sink, lane });
      lane.send({ t: "open", id, client, gate, early });
      const send = (message: ToRunner, transfer?: ArrayBuffer[]) => {
        if (!lane.dead) lane.send(message, transfer);
      };
      return {
        data: (bytes, finalsWritten) => {
          if (!lane.copies) return send({ t: "data", id, bytes, finalsWritten });
          const copy = bytes.slice();
          send({ t: "data", id, bytes: copy, finalsWritten }, [copy.buffer as ArrayBuffer]);
        },
        ended: () => send({ t: "ended", id }),
        gone: () => send({ t: "gone", id }),
        tlsStarted: (ok) => send({ t: "tls", id, ok }),
        banned: (text) => send({ t: "banned", id, text }),
      };
    },
    async shutdown(timeoutMs: number) {
      for (const lane of lanes) lane.send({ t: "shutdown" });
      if (sinks.size > 0) {
        await new Promise<void>((resolve) => {
          idle = resolve;
          setTimeout(resolve, timeoutMs);
        });
      }
      for (const lane of lanes) lane.terminate();
    },
  };
}

function inlineLane(config: RunnerConfig, dispatch: (message: FromRunner) => void): Lane {
  const runner = new SessionRunner(config, (message) => queueMicrotask(() => dispatch(message)), process.pid);
  return { sessions: 0, dead: false, copies: false, send: (message) => runner.handle(message), terminate: () => {} };
}

function workerLane(
  config: RunnerConfig,
  url: URL,
  dispatch: (message: FromRunner) => void,
  replace: (lane: Lane, reason: string) => void,
): Lane {
  const worker = new Worker(url, { type: "module" });
  const lane: Lane = {
    sessions: 0,
    dead: false,
    copies: true,
    send: (message, transfer = []) => worker.postMessage(message, transfer),
    terminate: () => worker.terminate(),
  };
  worker.onmessage = (event: MessageEvent<FromRunner>) => dispatch(event.data);
  // An uncaught error ends the worker on both runtimes; unhandled, Deno would end this process too.
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    replace(lane, event.message);
  };
  worker.postMessage(config);
  return lane;
}
