import { type ChildProcess, spawn } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import process from "node:process";
import { onCleanup } from "../harness.ts";

/**
 * Where in an upstream conversation a fault strikes: the connection itself, or the answer to that
 * step. `handover`: a later XCLIENT on the connection, introducing the client of the next session.
 */
export type Stage = "connect" | "greeting" | "ehlo" | "xclient" | "handover" | "mail" | "rcpt" | "data" | "dot";

/**
 * What the upstream does there: `reset` (RST), `close` (FIN), `stall` (never answers), `late`
 * (answers LATE_MS late and then goes on answering, after our FIN too, as real MTAs do).
 * `refuse` (nothing listening) and a `stall` at `connect` (SYN never answered) are not a
 * connection's behaviour but the listener's: see `refuse()` and `unanswered()`.
 */
export type Fault = "refuse" | "reset" | "close" | "stall" | "late";

export type Plan = { readonly stage: Stage; readonly fault: Fault } | "normal";

/** How long a reset or close waits after the stage is reached, so a client can hang up first. */
export const HOLD_MS = 100;
export const LATE_MS = 300;

/** One queued plan, and what the connection that took it went through. */
export interface PlannedConnection {
  readonly plan: Plan;
  /** A connection arrived and took this plan. */
  readonly taken: Promise<void>;
  /** It reached the plan's stage (for "normal": the final dot). */
  readonly reached: Promise<void>;
  /** Its socket closed, whoever closed it. */
  readonly ended: Promise<void>;
  /** Everything the connection received, as latin1 text. */
  readonly received: () => string;
  /** Takes the plan off the queue if no connection took it (the client's server died first). */
  withdraw(): void;
}

/** A message the upstream answered 250 to. */
export interface AcceptedMessage {
  readonly xclientAddr: string | undefined;
  readonly from: string;
  readonly to: readonly string[];
  readonly data: string;
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A scriptable SMTP server on loopback playing a misbehaving MTA behind mxscreen. It offers
 * XCLIENT and otherwise answers as a plain MTA; each incoming connection takes the next plan
 * from a queue the test fills (`plan()`), an unplanned one behaves normally and is recorded.
 */
export class HostileUpstream {
  readonly accepted: AcceptedMessage[] = [];
  /** What each connection that found no plan waiting received. */
  readonly unplanned: (() => string)[] = [];
  private readonly queue: { plan: Plan; taken: Deferred; reached: Deferred; ended: Deferred; received: string[] }[] = [];
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private holder: { child: ChildProcess; filler: Socket; exited: Promise<void> } | undefined;

  private constructor(private listenPort: number) {}

  static async start(): Promise<HostileUpstream> {
    const upstream = new HostileUpstream(0);
    await upstream.reopen();
    onCleanup(() => upstream.stop());
    return upstream;
  }

  /** Its port on 127.0.0.1, fixed for its lifetime (MXSCREEN_UPSTREAM points at it). */
  get port(): number {
    return this.listenPort;
  }

  plan(plan: Plan): PlannedConnection {
    const entry = { plan, taken: deferred(), reached: deferred(), ended: deferred(), received: [] as string[] };
    this.queue.push(entry);
    return {
      plan,
      taken: entry.taken.promise,
      reached: entry.reached.promise,
      ended: entry.ended.promise,
      received: () => entry.received.join(""),
      withdraw: () => {
        const at = this.queue.indexOf(entry);
        if (at >= 0) this.queue.splice(at, 1);
      },
    };
  }

  /** Nothing listens on the port until `reopen()`: connecting is refused. Open connections go on. */
  refuse(): Promise<void> {
    this.closeListener();
    return Promise.resolve();
  }

  /**
   * Until `reopen()`, a listener that never accepts holds the port with its one-entry backlog
   * filled, so the kernel drops every new SYN: a connect that is never answered.
   */
  async unanswered(): Promise<void> {
    this.closeListener();
    const script = `socket(S, PF_INET, SOCK_STREAM, 0) or die "socket: $!"; setsockopt(S, SOL_SOCKET, SO_REUSEADDR, 1);
      bind(S, sockaddr_in(${this.port}, inet_aton("127.0.0.1"))) or die "bind: $!"; listen(S, 0) or die "listen: $!";
      $| = 1; print "listening\\n"; sysread(STDIN, my $byte, 1);`;
    // Perl because neither runtime can listen without accepting; swaks, which the tests need, brings it.
    const child = spawn("perl", ["-MSocket", "-e", script], { stdio: ["pipe", "pipe", "pipe"] });
    const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk);
    await new Promise<void>((resolve, reject) => {
      child.on("error", (error) => reject(new Error(`cannot run perl for a listener that never accepts: ${error.message}`)));
      child.stdout!.once("data", () => resolve());
      exited.then(() => reject(new Error(`the never-accepting listener on port ${this.port} did not start: ${stderr}`)));
    });
    const filler = connect({ host: "127.0.0.1", port: this.port });
    filler.on("error", () => {});
    this.holder = { child, filler, exited };
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`could not fill the backlog of the never-accepting listener on port ${this.port}`)),
        2_000,
      );
      filler.once("connect", () => (clearTimeout(timer), resolve()));
    });
  }

  /** Listens on the port again after `refuse()` or `unanswered()`. */
  async reopen(): Promise<void> {
    await this.releaseHolder();
    if (this.server) return;
    this.server = await this.listen(this.listenPort);
    const address = this.server.address();
    if (this.listenPort === 0 && typeof address === "object" && address) this.listenPort = address.port;
  }

  async stop(): Promise<void> {
    await this.releaseHolder();
    for (const socket of this.sockets) socket.destroy();
    this.closeListener();
  }

  private listen(port: number): Promise<Server> {
    const server = createServer({ allowHalfOpen: true }, (socket) => this.serve(socket));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: "127.0.0.1", port }, () => resolve(server));
    });
  }

  /** close() stops listening at once; its callback, not awaited, waits for every open connection. */
  private closeListener(): void {
    this.server?.close();
    this.server = undefined;
  }

  private async releaseHolder(): Promise<void> {
    const holder = this.holder;
    this.holder = undefined;
    if (!holder) return;
    holder.filler.destroy();
    if (holder.child.exitCode === null && holder.child.signalCode === null) process.kill(holder.child.pid!, "SIGTERM");
    await holder.exited;
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    let entry = this.queue.shift();
    if (!entry) {
      const received: string[] = [];
      this.unplanned.push(() => received.join(""));
      entry = { plan: "normal", taken: deferred(), reached: deferred(), ended: deferred(), received };
    }
    entry.taken.resolve();
    new Conversation(socket, entry.plan, entry.reached, entry.received, this.accepted).start();
    socket.on("error", () => {});
    socket.on("close", () => {
      this.sockets.delete(socket);
      entry.ended.resolve();
    });
  }
}

/** One upstream connection: a plain MTA's conversation, with the planned fault at its stage. */
class Conversation {
  private buffered = "";
  private inData = false;
  private data: string[] = [];
  private from = "";
  private to: string[] = [];
  private xclientAddr: string | undefined;
  private ehlos = 0;
  private xclients = 0;
  private done = false;
  /** Replies go out in order even when one of them is held back. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: Socket,
    private readonly plan: Plan,
    private readonly reached: Deferred,
    private readonly received: string[],
    private readonly accepted: AcceptedMessage[],
  ) {}

  start(): void {
    this.socket.setEncoding("latin1");
    this.socket.on("data", (text: string) => {
      this.received.push(text);
      this.buffered += text;
      let end: number;
      while ((end = this.buffered.indexOf("\n")) >= 0) {
        const line = this.buffered.slice(0, end + 1);
        this.buffered = this.buffered.slice(end + 1);
        this.line(line);
      }
    });
    // A half-closed peer is still answered: what it sent before its FIN was asked in earnest.
    this.socket.on("end", () => this.enqueue(() => this.finish()));
    const atConnect = this.faultAt("connect");
    if (atConnect) return this.strike(atConnect, "");
    const atGreeting = this.faultAt("greeting");
    if (atGreeting) {
      this.socket.write("220-upstream.test.example ESMTP hostile\r\n");
      return this.strike(atGreeting, "220 upstream.test.example ready\r\n");
    }
    this.socket.write("220 upstream.test.example ESMTP hostile\r\n");
  }

  /** The fault planned for `stage`, if any. */
  private faultAt(stage: Stage): Fault | undefined {
    return this.plan !== "normal" && this.plan.stage === stage ? this.plan.fault : undefined;
  }

  /** `fault` in place of `answer`; `answered` runs when a late answer goes out. */
  private strike(fault: Fault, answer: string, answered: () => void = () => {}): void {
    this.reached.resolve();
    this.enqueue(async () => {
      if (fault === "stall") return new Promise<void>(() => {});
      await sleep(fault === "late" ? LATE_MS : HOLD_MS);
      if (fault === "reset") return void this.socket.resetAndDestroy();
      if (fault === "close") return void this.socket.end();
      answered();
      this.write(answer);
    });
  }

  private enqueue(step: () => void | Promise<void>): void {
    this.chain = this.chain.then(step);
  }

  private write(text: string): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(text);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.socket.end();
  }

  private line(line: string): void {
    if (this.inData) return this.dataLine(line);
    const command = line.replace(/\r?\n$/, "");
    const verb = command.split(" ")[0].toUpperCase();
    const answer = (stage: Stage, text: string) => {
      const fault = this.faultAt(stage);
      if (fault) return this.strike(fault, text);
      this.enqueue(() => this.write(text));
    };
    switch (verb) {
      case "EHLO":
        this.ehlos++;
        // The EHLO after XCLIENT is the XCLIENT step's own: only the first is the "ehlo" stage.
        if (this.ehlos === 1) {
          return answer("ehlo", "250-upstream.test.example\r\n250-XCLIENT ADDR PORT NAME HELO PROTO\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
        }
        return this.enqueue(() => this.write("250-upstream.test.example\r\n250 8BITMIME\r\n"));
      case "HELO":
        // mxscreen greets with HELO only after XCLIENT, for a client that said HELO.
        return this.enqueue(() => this.write("250 upstream.test.example\r\n"));
      case "XCLIENT":
        this.xclientAddr = /\bADDR=(\S+)/.exec(command)?.[1];
        this.xclients++;
        return answer(this.xclients === 1 ? "xclient" : "handover", "220 upstream.test.example ESMTP hostile\r\n");
      case "MAIL":
        this.from = /<([^>]*)>/.exec(command)?.[1] ?? "";
        this.to = [];
        return answer("mail", "250 2.1.0 Ok\r\n");
      case "RCPT":
        this.to.push(/<([^>]*)>/.exec(command)?.[1] ?? "");
        return answer("rcpt", "250 2.1.5 Ok\r\n");
      case "DATA":
        this.inData = true;
        this.data = [];
        return answer("data", "354 End data with <CR><LF>.<CR><LF>\r\n");
      case "RSET":
        return this.enqueue(() => this.write("250 2.0.0 Ok\r\n"));
      case "NOOP":
        return this.enqueue(() => this.write("250 2.0.0 Ok\r\n"));
      case "QUIT":
        return this.enqueue(() => {
          this.write("221 2.0.0 Bye\r\n");
          this.finish();
        });
      default:
        return this.enqueue(() => this.write("502 5.5.2 Error: command not recognized\r\n"));
    }
  }

  private dataLine(line: string): void {
    if (line !== ".\r\n") {
      this.data.push(line.startsWith(".") ? line.slice(1) : line);
      return;
    }
    this.inData = false;
    const message = { xclientAddr: this.xclientAddr, from: this.from, to: [...this.to], data: this.data.join("") };
    const id = `H${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`.toUpperCase();
    const queued = `250 2.0.0 Ok: queued as ${id}\r\n`;
    // Accepted once the 250 is on its way, whoever is still there to read it.
    const fault = this.faultAt("dot");
    if (fault) return this.strike(fault, queued, () => this.accepted.push(message));
    if (this.plan === "normal") this.reached.resolve();
    this.enqueue(() => {
      this.accepted.push(message);
      this.write(queued);
    });
  }
}
