import { Spool } from "../src/delivery/spool.ts";
import type { Deliverer, OutgoingMessage } from "../src/delivery/types.ts";
import { cachingDnsClient } from "../src/dns/answer-cache.ts";
import { forwardConfirmedReverse } from "../src/dns/fcrdns.ts";
import { heloNameDns } from "../src/dns/helo-name.ts";
import { mailDomain } from "../src/dns/mail-domain.ts";
import { createDnsClient } from "../src/dns/resolver.ts";
import type { DnsClient, ReverseDns } from "../src/dns/types.ts";
import { relayMessage } from "../src/delivery/relay.ts";
import type { Upstream } from "../src/delivery/upstream.ts";
import { UpstreamPool } from "../src/delivery/upstream-pool.ts";
import type { UpstreamAnswer } from "../src/delivery/upstream-machine.ts";
import { parseIP } from "../src/ip/address.ts";
import { Session } from "../src/smtp/session.ts";
import type { Output } from "../src/smtp/types.ts";
import { bugFields } from "../src/log/bug.ts";
import type { FromRunner, RunnerConfig, ToRunner } from "./types.ts";

interface Running {
  readonly id: number;
  readonly session: Session;
  message: OutgoingMessage | undefined;
  /** The message at hand, for its DELIVERED / DELIVERY-FAILED line: envelope and bytes of content. */
  trace: { readonly from: string; readonly to: string; size: number } | undefined;
  reverse: ReverseDns | undefined;
  upstream: Upstream | undefined;
  /** The upstream or the disk cannot take the message as fast as the client sends it. */
  congested: boolean;
  /** Reading from the client is stopped (the session waits, or the upstream is congested). */
  paused: boolean;
}

const TICK_MS = 1000;

/**
 * Runs SMTP sessions for the accept loop: feeds the sans-I/O core, keeps its deadlines with
 * one coarse timer, delivers its messages and answers its DNS questions (the store's are
 * forwarded to the accept loop). The same code runs inline and in a worker.
 *
 * It owns every error around a session: each input runs guarded, every promise it starts ends
 * in an input to that session, and anything thrown fails that session alone (`421 4.3.0` and a
 * `BUG` line with the stack), never the process or the worker's other sessions.
 */
export class SessionRunner {
  private readonly sessions = new Map<number, Running>();
  private readonly deliverer: Deliverer;
  private readonly dns: DnsClient;
  /** Warm connections to the upstream, for this runner's sessions (one pool per worker). */
  private readonly upstreams: UpstreamPool | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly config: RunnerConfig, private readonly post: (message: FromRunner) => void, pid: number) {
    this.deliverer = new Spool(config.spoolDir, pid);
    this.dns = cachingDnsClient(createDnsClient(
      config.dns.server,
      config.dns.timeoutMs,
      (type, status, seconds, name) => this.post({ t: "dns", type, status, seconds, name }),
    ));
    this.upstreams = config.upstream && new UpstreamPool(config.upstream, (message) => this.post({ t: "note", level: "warn", message }));
  }

  handle(message: ToRunner): void {
    const now = Date.now();
    switch (message.t) {
      case "open":
        return this.open(message.id, message, now);
      case "data":
        return this.feed(message.id, (session) => session.receive(message.bytes, now, message.finalsWritten));
      case "ended":
        return this.feed(message.id, (session) => session.inputEnded(now));
      case "tls":
        return this.feed(message.id, (session) => session.tlsStarted(message.ok, now));
      case "greylisted":
        return this.feed(message.id, (session) => session.greylisted(message.verdict, now));
      case "gone":
        return this.feed(message.id, (session) => session.clientClosed());
      case "banned":
        return this.feed(message.id, (session) => session.banned(message.text));
      case "shutdown":
        this.upstreams?.close();
        for (const running of [...this.sessions.values()]) this.input(running, (session) => session.shutdown());
        return;
    }
  }

  private open(id: number, message: Extract<ToRunner, { t: "open" }>, now: number): void {
    let session: Session;
    try {
      session = new Session(this.config.session, message.client, now, message.gate);
    } catch (error) {
      this.refuse(id, error);
      this.post({ t: "end", id, facts: undefined });
      return;
    }
    const running: Running = {
      id,
      session,
      message: undefined,
      trace: undefined,
      reverse: undefined,
      upstream: undefined,
      congested: false,
      paused: false,
    };
    this.sessions.set(id, running);
    this.timer ??= setInterval(() => this.tick(), TICK_MS);
    const extensions = this.upstreams?.extensions;
    if (extensions !== undefined) session.learnUpstreamExtensions(extensions);
    this.input(running, (s) => s.start());
    if (message.early) this.input(running, (s) => s.receive(message.early!, now));
  }

  /** One input to a session, which may have ended while the message was on its way. */
  private feed(id: number, input: (session: Session) => Output[]): void {
    const running = this.sessions.get(id);
    if (running) this.input(running, input);
  }

  /** Runs one input and its outputs; whatever it throws fails this session only. */
  private input(running: Running, input: (session: Session) => Output[]): void {
    if (!this.sessions.has(running.id)) return;
    try {
      this.apply(running, input(running.session));
    } catch (error) {
      this.fail(running, error);
    }
  }

  /**
   * Waits for `promise` on behalf of a session: its value becomes an input, and a rejection
   * (a bug: our lookups answer failures as values) fails that session alone.
   */
  private settle<T>(running: Running, promise: Promise<T>, input: (value: T, session: Session) => Output[]): void {
    promise.then(
      (value) => this.input(running, (session) => input(value, session)),
      (error) => {
        if (this.sessions.has(running.id)) this.fail(running, error);
      },
    );
  }

  private fail(running: Running, error: unknown): void {
    this.refuse(running.id, error);
    void running.message?.abort().catch(() => {});
    running.message = undefined;
    this.end(running, false);
  }

  /** A bug of ours, for one client: logged with its stack, the client told to come back, the connection closed. */
  private refuse(id: number, error: unknown): void {
    this.post({ t: "log", id, entry: { event: "BUG", ...bugFields(error), action: "tempfail" } });
    this.post({ t: "write", id, text: `421 4.3.0 ${this.config.session.hostname} Error: local error in processing, try again later\r\n` });
    this.post({ t: "close", id });
  }

  private tick(): void {
    const now = Date.now();
    for (const running of [...this.sessions.values()]) {
      if (running.session.deadline <= now) this.input(running, (session) => session.tick(now));
    }
  }

  private apply(running: Running, outputs: Output[]): void {
    const { id, session } = running;
    // Replies to one input travel as one message.
    let text = "";
    const writeOut = () => {
      if (text !== "") this.post({ t: "write", id, text });
      text = "";
    };
    for (const output of outputs) {
      switch (output.type) {
        case "reply":
          text += output.text;
          break;
        case "paced-reply":
          this.post({
            t: "write",
            id,
            text: text + output.head,
            pace: { final: output.final, stutterMs: output.stutterMs, tarpitMs: output.tarpitMs },
          });
          text = "";
          break;
        case "close":
          writeOut();
          this.post({ t: "close", id });
          break;
        case "starttls":
          this.post({ t: "starttls", id, text });
          text = "";
          break;
        case "message-begin": {
          const context = {
            envelope: output.envelope,
            clientAddress: session.client.address,
            receivedAt: new Date(),
            hostname: this.config.session.hostname,
          };
          running.trace = { from: output.envelope.from, to: output.envelope.recipients.join(","), size: 0 };
          running.message = running.upstream
            ? relayMessage(running.upstream, context)
            : this.deliverer.begin(context, (yes) => this.congest(running, yes));
          break;
        }
        case "upstream":
          this.ask(running, output.command);
          break;
        case "upstream-reset":
          running.upstream?.reset();
          break;
        case "message-data":
          running.message?.write(output.bytes);
          if (running.trace) running.trace.size += output.bytes.length;
          break;
        case "message-end":
          this.finish(running);
          break;
        case "message-abort":
          void running.message?.abort().catch(() => {});
          running.message = undefined;
          running.congested = false;
          break;
        case "lookup-helo-name": {
          const ip = parseIP(session.client.address);
          if (ip !== null) {
            this.settle(running, heloNameDns(this.dns, output.name, ip), (outcome, s) => {
              s.learnHeloDns(output.name, outcome);
              return [];
            });
          }
          break;
        }
        case "lookup-reverse": {
          const ip = parseIP(session.client.address);
          const reverse: Promise<ReverseDns> = ip === null
            ? Promise.resolve({ status: "temperror", reason: `${session.client.address} is not an address` })
            : forwardConfirmedReverse(this.dns, ip);
          this.settle(running, reverse, (answer, s) => {
            running.reverse = answer;
            return s.learnReverseDns(answer);
          });
          break;
        }
        case "lookup-greylist":
          this.post({ t: "greylist", id, triplet: output.triplet });
          break;
        case "refused":
          this.post({
            t: "log",
            id,
            entry: {
              event: "REJECT",
              stage: output.stage,
              from: output.from,
              to: output.to,
              helo: session.facts.helo,
              reply: output.reply,
              action: "reject",
            },
          });
          break;
        case "lookup-mail-domain":
          this.settle(running, mailDomain(this.dns, output.domain), (answer, s) => s.resolved(answer, Date.now()));
          break;
      }
    }
    writeOut();
    if (session.closed && running.message === undefined) return this.end(running, true);
    this.updateReading(running);
  }

  /** Reads from the client only while the session consumes what it reads: a client cannot make us buffer. */
  private updateReading(running: Running): void {
    const pause = running.session.waiting || running.congested;
    if (pause === running.paused) return;
    running.paused = pause;
    this.post({ t: pause ? "pause" : "resume", id: running.id });
  }

  /** The message's way out (the upstream or the disk) cannot take it as fast as the client sends it, or caught up. */
  private congest(running: Running, yes: boolean): void {
    running.congested = yes;
    if (this.sessions.has(running.id)) this.updateReading(running);
  }

  /** Asks the upstream; when it cannot be had, the client is told to try again later. */
  private ask(running: Running, command: string): void {
    const { session } = running;
    // A connection that failed serves no later question; a new transaction may try a new one.
    if (running.upstream?.failed !== undefined && /^MAIL /i.test(command)) {
      running.upstream.quit();
      running.upstream = undefined;
    }
    const upstream = running.upstream ??= this.upstreams!.take({
      address: session.client.address,
      port: session.client.port,
      local: session.client.local,
      helo: session.facts.helo,
      name: running.reverse?.status === "pass" ? running.reverse.name : undefined,
      protocol: session.spoken,
    }, (yes) => this.congest(running, yes));
    this.settle(running, upstream.command(command), (answer, s) => s.upstreamReplied(this.upstreamReply(running, answer), Date.now()));
  }

  private upstreamReply(running: Running, answer: UpstreamAnswer): { code: number; text: string } {
    if (answer.ok) return answer.reply;
    this.post({ t: "log", id: running.id, entry: { event: "UPSTREAM-FAILED", reason: answer.reason, action: "tempfail" } });
    return {
      code: 451,
      text: `451 4.4.1 ${this.config.session.hostname} Error: the mail server behind us is not available, try again later\r\n`,
    };
  }

  private finish(running: Running): void {
    const message = running.message!;
    const upstream = this.config.upstream;
    const relay = running.upstream && upstream ? `${upstream.host}:${upstream.port}` : undefined;
    const relayTls = running.upstream?.tls ? true : undefined;
    const trace = running.trace;
    this.settle(running, message.finish(), (result, session) => {
      running.message = undefined;
      running.trace = undefined;
      const about = { from: trace?.from, to: trace?.to, size: trace?.size, relay, relay_tls: relayTls, reply: result.reply?.trim() };
      this.post({
        t: "log",
        id: running.id,
        entry: result.ok
          ? { event: "DELIVERED", queue_id: result.id, ...about, action: relay ? "relay" : "spool" }
          : { event: "DELIVERY-FAILED", queue_id: message.id, reason: result.reason, ...about, action: "tempfail" },
      });
      return session.delivered(result, Date.now());
    });
  }

  /** `clean`: the session ended by itself (its facts make its verdict); else it was failed. */
  private end(running: Running, clean: boolean): void {
    if (!this.sessions.delete(running.id)) return;
    if (running.upstream) this.upstreams?.release(running.upstream);
    this.post({ t: "end", id: running.id, facts: clean ? { ...running.session.facts } : undefined });
    if (this.sessions.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
