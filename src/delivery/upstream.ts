import { connectTcp } from "../net/connect.ts";
import type { OutboundSocket } from "../net/types.ts";
import { concatBytes } from "../smtp/bytes.ts";
import type { Extensions } from "../smtp/extensions.ts";
import {
  type ClientIdentity,
  type UpstreamAnswer,
  UpstreamMachine,
  type UpstreamOutput,
  type UpstreamSettings,
} from "./upstream-machine.ts";

const HIGH_WATER = 256 * 1024;
const LOW_WATER = 64 * 1024;

export interface UpstreamConfig extends Omit<UpstreamSettings, "name"> {
  readonly host: string;
  readonly port: number;
  /** MXSCREEN_UPSTREAM_TLS_CA's PEM certificates, trusted instead of the system store; undefined: the system store. */
  readonly tlsCa: string | undefined;
}

/**
 * The socket side of one UpstreamMachine, for one client session at a time: opened at the first
 * question, and lent to the next session by the pool (`handOver`) when it is reusable. It owns
 * every error of its socket and timer: each one becomes an answer of the machine, so the
 * promises it returns always resolve, never reject.
 */
export class Upstream {
  private readonly machine: UpstreamMachine;
  private socket: OutboundSocket | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly waiting: ((answer: UpstreamAnswer) => void)[] = [];
  private unsent = 0;
  private paused = false;
  /**
   * What was written in this synchronous run (flushed at the next microtask), sent as one socket write at its end: the
   * trace headers, a read's worth of content and the final dot (or a session's commands) then
   * cost one system call here and one read at the upstream, not one each.
   */
  private pending: Uint8Array[] = [];
  private flushQueued = false;
  /** When its current TCP connection was opened (Date.now()); undefined before the first question. */
  private openedAt: number | undefined;

  /** `congested(true)` when the upstream's socket has as much as it will buffer, `false` once it drained. */
  constructor(
    private readonly config: UpstreamConfig,
    client: ClientIdentity,
    private congested: (yes: boolean) => void = () => {},
  ) {
    this.machine = new UpstreamMachine({ ...config, name: `${config.host}:${config.port}` }, client, Date.now());
  }

  /** Why this connection can no longer be used (then a new transaction needs a new Upstream). */
  get failed(): string | undefined {
    return this.machine.failed;
  }

  /** Connected, idle between transactions and trusted: another session may have it. */
  get reusable(): boolean {
    return this.socket !== undefined && !this.socket.destroyed && this.machine.reusable;
  }

  get usesXclient(): boolean {
    return this.machine.usesXclient;
  }

  get extensions(): Extensions | undefined {
    return this.machine.extensions;
  }

  /** Its connection is inside TLS. */
  get tls(): boolean {
    return this.machine.tls;
  }

  get tlsFallback(): string | undefined {
    return this.machine.tlsFallback;
  }

  get refusesSecondXclient(): boolean {
    return this.machine.refusesSecondXclient;
  }

  /** How long its connection has been open, in ms. */
  age(now: number): number {
    return this.openedAt === undefined ? 0 : now - this.openedAt;
  }

  /** Lends this idle connection to another client's session, which is introduced to the upstream first. */
  handOver(client: ClientIdentity, congested: (yes: boolean) => void): void {
    this.congested = congested;
    this.run(this.machine.introduce(client, Date.now()));
  }

  /** Sends one command line once everything before it has been answered; resolves with its answer. */
  command(line: string): Promise<UpstreamAnswer> {
    return this.question(() => this.machine.ask(line, Date.now()));
  }

  /** Drops the upstream's transaction (RSET) without waiting for its answer. */
  reset(): void {
    if (this.socket) this.run(this.machine.reset(Date.now()));
  }

  /** Message content as the session gives it (unstuffed whole lines ending CRLF), dot-stuffed on the way out. */
  writeData(bytes: Uint8Array): void {
    this.run(this.machine.data(bytes));
  }

  /** Ends the message and resolves with the upstream's verdict on it. */
  endData(): Promise<UpstreamAnswer> {
    return this.question(() => this.machine.endData(Date.now()));
  }

  abort(): void {
    this.run(this.machine.abort());
  }

  quit(): void {
    this.run(this.machine.quit());
  }

  private question(ask: () => UpstreamOutput[]): Promise<UpstreamAnswer> {
    const answer = new Promise<UpstreamAnswer>((resolve) => this.waiting.push(resolve));
    this.open();
    this.run(ask());
    return answer;
  }

  private open(): void {
    if (this.socket || this.machine.failed !== undefined) return;
    // Events of a connection replaced by a new one (`reconnect`) concern nobody any more.
    const current = () => this.socket === socket;
    const socket = connectTcp(this.config.host, this.config.port, {
      connected: () => current() && this.run(this.machine.connected(Date.now())),
      data: (bytes) => current() && this.run(this.machine.received(bytes, Date.now())),
      lost: (reason) => current() && this.run(this.machine.lost(reason, Date.now())),
    });
    this.socket = socket;
    this.openedAt = Date.now();
  }

  private run(outputs: UpstreamOutput[]): void {
    for (const output of outputs) {
      switch (output.type) {
        case "write":
          this.write(output.bytes);
          break;
        case "answer":
          this.waiting.shift()?.(output.answer);
          break;
        case "close":
          this.close(output.graceful);
          break;
        case "starttls":
          this.startTls();
          break;
        case "reconnect":
          this.socket = undefined;
          this.open();
          break;
      }
    }
    this.arm();
  }

  private startTls(): void {
    const socket = this.socket;
    if (!socket) return;
    this.flush();
    const options = { host: this.config.host, verify: this.config.tls === "verify", ca: this.config.tlsCa };
    socket.startTls(options, (failure) => this.socket === socket && this.run(this.machine.tlsStarted(failure, Date.now())));
  }

  private arm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const deadline = this.machine.deadline;
    if (deadline === Infinity || this.socket === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.run(this.machine.tick(Date.now()));
    }, Math.max(0, deadline - Date.now()));
  }

  private write(bytes: Uint8Array): void {
    if (!this.socket || this.socket.destroyed) return;
    this.pending.push(bytes);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  private flush(): void {
    const socket = this.socket;
    const parts = this.pending;
    if (parts.length === 0) return;
    this.pending = [];
    if (!socket || socket.destroyed) return;
    const bytes = parts.length === 1 ? parts[0] : concatBytes(parts);
    // Counted by completion callbacks: a fast client would otherwise pile its message up here.
    this.unsent += bytes.length;
    if (this.unsent > HIGH_WATER && !this.paused) {
      this.paused = true;
      this.congested(true);
    }
    socket.write(bytes, () => {
      this.unsent -= bytes.length;
      if (this.paused && this.unsent < LOW_WATER) {
        this.paused = false;
        this.congested(false);
      }
    });
  }

  private close(graceful: boolean): void {
    const socket = this.socket;
    if (!socket) return;
    if (graceful) {
      this.flush();
      socket.end();
    } else {
      this.pending = [];
      socket.destroy();
    }
    if (this.paused) {
      this.paused = false;
      this.congested(false);
    }
  }
}
