import { connect, type Socket } from "node:net";
import { encodeProxyV2 } from "../gate/proxy-protocol.ts";
import { dotStuff } from "./dot-stuff.ts";
import { type Reply, ReplyReader, xtext } from "./reply-reader.ts";

const HIGH_WATER = 256 * 1024;
const LOW_WATER = 64 * 1024;

export type UpstreamIdentity = "xclient" | "proxy" | "none" | "auto";

export interface UpstreamConfig {
  readonly host: string;
  readonly port: number;
  readonly identity: UpstreamIdentity;
  readonly timeoutMs: number;
  /** Our name in EHLO. */
  readonly hostname: string;
}

/** Who the upstream should believe it is talking to: the client we screened. */
export interface ClientIdentity {
  readonly address: string;
  readonly port: number;
  readonly helo: string | undefined;
  /** A forward-confirmed reverse name, or undefined. */
  readonly name: string | undefined;
  readonly protocol: string;
}

/**
 * One SMTP client connection to the MTA behind us, for one client session: opened at the first
 * command, introduced with XCLIENT or a PROXY v2 header as configured, then each command waits
 * for the upstream's reply. Any failure (refused, timed out, closed, not SMTP) rejects, so the
 * client is told to try again later: we never accept what the upstream did not.
 */
export class Upstream {
  private socket: Socket | undefined;
  private ready: Promise<void> | undefined;
  private readonly reader = new ReplyReader();
  private waiting: { resolve: (reply: Reply) => void; reject: (error: Error) => void; timer: ReturnType<typeof setTimeout> }[] = [];
  private failure: Error | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private unsent = 0;
  private paused = false;

  /** `congested(true)` when the upstream's socket has as much as it will buffer, `false` once it drained. */
  constructor(
    private readonly config: UpstreamConfig,
    private readonly client: () => ClientIdentity,
    private readonly congested: (yes: boolean) => void = () => {},
  ) {}

  /** Sends one command line once everything before it has been answered; resolves with its reply. */
  command(line: string): Promise<Reply> {
    const next = this.chain.then(async () => {
      await this.open();
      return this.send(`${line}\r\n`);
    });
    this.chain = next.catch(() => {});
    return next;
  }

  /** Message content as the session gives it (unstuffed whole lines ending CRLF), dot-stuffed on the way out. */
  writeData(bytes: Uint8Array): void {
    if (!this.socket || this.failure) return;
    this.write(dotStuff(bytes));
  }

  /** Ends the message and resolves with the upstream's verdict on it. */
  endData(): Promise<Reply> {
    const next = this.chain.then(() => this.send(".\r\n"));
    this.chain = next.catch(() => {});
    return next;
  }

  /** A message we will not finish: the only way to take back DATA is to hang up. */
  abort(): void {
    this.fail(new Error("message abandoned"));
  }

  /** Says goodbye without waiting for the answer. */
  quit(): void {
    if (this.socket && !this.failure) {
      this.socket.end("QUIT\r\n");
      this.failure = new Error("closed");
    }
    this.socket = undefined;
  }

  private open(): Promise<void> {
    if (this.failure) this.reset();
    this.ready ??= this.handshake().catch((error) => {
      this.fail(error);
      throw error;
    });
    return this.ready;
  }

  private reset(): void {
    this.socket?.destroy();
    this.socket = undefined;
    this.ready = undefined;
    this.failure = undefined;
    this.waiting = [];
  }

  private async handshake(): Promise<void> {
    const { host, port, identity, hostname } = this.config;
    const socket = connect({ host, port });
    this.socket = socket;
    socket.setNoDelay(true);
    const greeting = this.expect();
    // Listen at once: Bun may deliver the greeting before an awaited "connect" resumes us.
    socket.on("data", (bytes: Uint8Array) => this.receive(bytes));
    socket.on("close", () => this.fail(new Error(`${host}:${port} closed the connection`)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection to ${host}:${port} within ${this.config.timeoutMs} ms`)), this.config.timeoutMs);
      socket.once("connect", () => (clearTimeout(timer), resolve()));
      socket.once("error", (error) => (clearTimeout(timer), reject(new Error(`cannot connect to ${host}:${port}: ${error.message}`))));
    });
    socket.on("error", (error) => this.fail(error));
    const client = this.client();
    if (identity === "proxy") socket.write(encodeProxyV2({ address: client.address, port: client.port }, { address: socket.localAddress ?? "0.0.0.0", port: socket.localPort ?? 0 }));
    const hello = await greeting;
    if (hello.code !== 220) throw new Error(`${host}:${port} greeted with ${hello.text.trim()}`);
    let ehlo = await this.send(`EHLO ${hostname}\r\n`);
    if (ehlo.code !== 250) throw new Error(`${host}:${port} answered EHLO with ${ehlo.text.trim()}`);
    const offersXclient = /^250[ -]XCLIENT\b/im.test(ehlo.text);
    if (identity === "xclient" && !offersXclient) {
      throw new Error(`${host}:${port} does not offer XCLIENT to us: authorise this host (Postfix: smtpd_authorized_xclient_hosts)`);
    }
    if (identity === "xclient" || (identity === "auto" && offersXclient)) {
      const attributes = [
        `ADDR=${client.address.includes(":") ? `IPV6:${client.address}` : client.address}`,
        `PORT=${client.port}`,
        `NAME=${client.name ? xtext(client.name) : "[UNAVAILABLE]"}`,
        `HELO=${client.helo ? xtext(client.helo) : "[UNAVAILABLE]"}`,
        `PROTO=${client.protocol === "SMTP" ? "SMTP" : "ESMTP"}`,
      ];
      const introduced = await this.send(`XCLIENT ${attributes.join(" ")}\r\n`);
      if (introduced.code !== 220) throw new Error(`${host}:${port} refused XCLIENT: ${introduced.text.trim()}`);
      ehlo = await this.send(`EHLO ${hostname}\r\n`);
      if (ehlo.code !== 250) throw new Error(`${host}:${port} answered EHLO after XCLIENT with ${ehlo.text.trim()}`);
    }
  }

  private write(out: Uint8Array): void {
    const socket = this.socket;
    if (!socket || this.failure) return;
    // Counted by completion callbacks, not write()'s return value: on Bun and Deno that does not
    // report a full buffer, and a fast client would pile its message up here.
    this.unsent += out.length;
    if (this.unsent > HIGH_WATER && !this.paused) {
      this.paused = true;
      this.congested(true);
    }
    socket.write(out, () => {
      this.unsent -= out.length;
      if (this.paused && this.unsent < LOW_WATER) {
        this.paused = false;
        this.congested(false);
      }
    });
  }

  private send(text: string): Promise<Reply> {
    if (this.failure || !this.socket) return Promise.reject(this.failure ?? new Error("not connected"));
    const reply = this.expect();
    this.socket.write(text);
    return reply;
  }

  private expect(): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`${this.config.host}:${this.config.port} did not answer within ${this.config.timeoutMs} ms`)), this.config.timeoutMs);
      this.waiting.push({ resolve, reject, timer });
    });
  }

  private receive(bytes: Uint8Array): void {
    let replies: Reply[];
    try {
      replies = this.reader.push(bytes);
    } catch (error) {
      return this.fail(error as Error);
    }
    for (const reply of replies) {
      const waiter = this.waiting.shift();
      if (!waiter) return this.fail(new Error(`${this.config.host}:${this.config.port} sent a reply nobody asked for`));
      clearTimeout(waiter.timer);
      waiter.resolve(reply);
    }
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const waiter of this.waiting.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.socket?.destroy();
  }
}
