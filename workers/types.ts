import type { UpstreamPoolConfig } from "../src/delivery/upstream-pool.ts";
import type { LogEntry } from "../src/log/logger.ts";
import type { ClientInfo, GateFacts, SessionConfig, SessionFacts } from "../src/smtp/types.ts";

/** What a session runner needs to know, sent once to each worker. */
export interface RunnerConfig {
  readonly session: SessionConfig;
  readonly spoolDir: string;
  /** MXSCREEN_DNS (undefined: the system's resolvers) and MXSCREEN_DNS_TIMEOUT. */
  readonly dns: { readonly server: { readonly host: string; readonly port: number } | undefined; readonly timeoutMs: number };
  /** MXSCREEN_UPSTREAM: relay to this MTA; undefined: deliver to the spool. */
  readonly upstream: UpstreamPoolConfig | undefined;
}

/** The final line of a paced reply and the pauses before it (the tarpit's as its budget allows). */
export interface Pace {
  readonly final: string;
  readonly stutterMs: number;
  readonly tarpitMs: number;
}

/** Accept loop → runner. */
export type ToRunner =
  | { readonly t: "open"; readonly id: number; readonly client: ClientInfo; readonly gate: GateFacts; readonly early?: Uint8Array }
  /** `finalsWritten`: how many paced replies' final lines were written when the bytes arrived (`Session.receive`). */
  | { readonly t: "data"; readonly id: number; readonly bytes: Uint8Array; readonly finalsWritten?: number }
  /** The client shut down its sending side: answer what it sent, then close. */
  | { readonly t: "ended"; readonly id: number }
  | { readonly t: "gone"; readonly id: number }
  | { readonly t: "tls"; readonly id: number; readonly ok: boolean }
  | { readonly t: "greylisted"; readonly id: number; readonly verdict: "pass" | "defer" }
  /** A ban made while the session is open covers its client: say `text` (a 421) and close. */
  | { readonly t: "banned"; readonly id: number; readonly text: string }
  | { readonly t: "shutdown" };

/** Runner → accept loop. */
export type FromRunner =
  /** A DNS lookup the runner made, for the latency metrics. */
  | { readonly t: "dns"; readonly type: string; readonly status: string; readonly seconds: number; readonly name: string }
  /** `pace`: then, after its pauses, the final line; whatever comes next is written after it. */
  | { readonly t: "write"; readonly id: number; readonly text: string; readonly pace?: Pace }
  | { readonly t: "close"; readonly id: number }
  /** Stop or start reading from the client: the upstream cannot take its message as fast as it sends it. */
  | { readonly t: "pause" | "resume"; readonly id: number }
  /** Write `text` (the go-ahead), then hand the socket to TLS at once: one message, so no byte can slip in between. */
  | { readonly t: "starttls"; readonly id: number; readonly text: string }
  | { readonly t: "log"; readonly id: number; readonly entry: LogEntry }
  /** Something the operator should know that concerns no one session (the upstream refuses connection reuse). */
  | { readonly t: "note"; readonly level: "info" | "warn"; readonly message: string }
  /** A worker caught an error nothing handled: a bug of ours, not tied to one session. */
  | { readonly t: "bug"; readonly entry: LogEntry }
  /** Ask the store (it lives on the accept loop's thread) about a greylist triplet; answered by "greylisted". */
  | { readonly t: "greylist"; readonly id: number; readonly triplet: string }
  /** The session is over; `facts` is undefined when it was failed by a bug of ours (already logged as `BUG`). */
  | { readonly t: "end"; readonly id: number; readonly facts: SessionFacts | undefined };

/** The accept loop's side of one session, whether it runs inline or in a worker. */
export interface SessionSink {
  write(text: string, pace?: Pace): void;
  close(): void;
  starttls(text: string): void;
  pause(): void;
  resume(): void;
  log(entry: LogEntry): void;
  greylist(triplet: string): Promise<"pass" | "defer">;
  /** The session is over; `facts` undefined: it was failed by a bug of ours, after a `421 4.3.0`. */
  end(facts: SessionFacts | undefined): void;
  /** The worker running this session died: the session is over, without facts. */
  failed(reason: string): void;
}

export interface SessionHandle {
  /** `finalsWritten`: how many paced replies' final lines were written when they arrived (`Session.receive`). */
  data(bytes: Uint8Array, finalsWritten?: number): void;
  /** The client half-closed. */
  ended(): void;
  gone(): void;
  tlsStarted(ok: boolean): void;
  /** A ban covers the client: the session says `text` and closes (after an answer it waits for). */
  banned(text: string): void;
}

export interface SessionPool {
  open(client: ClientInfo, gate: GateFacts, early: Uint8Array | undefined, sink: SessionSink): SessionHandle;
  /** Asks every session to finish; resolves when all have ended or after `timeoutMs`. */
  shutdown(timeoutMs: number): Promise<void>;
  readonly size: number;
}
