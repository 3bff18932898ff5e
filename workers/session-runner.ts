import { Spool } from "../src/delivery/spool.ts";
import type { Deliverer, OutgoingMessage } from "../src/delivery/types.ts";
import { forwardConfirmedReverse } from "../src/dns/fcrdns.ts";
import { heloNameDns } from "../src/dns/helo-name.ts";
import { mailDomain } from "../src/dns/mail-domain.ts";
import { createDnsClient } from "../src/dns/resolver.ts";
import type { DnsClient, ReverseDns } from "../src/dns/types.ts";
import { relayMessage } from "../src/delivery/relay.ts";
import { Upstream } from "../src/delivery/upstream.ts";
import { parseIP } from "../src/ip/address.ts";
import { Session } from "../src/smtp/session.ts";
import type { Output } from "../src/smtp/types.ts";
import type { FromRunner, RunnerConfig, ToRunner } from "./types.ts";

interface Running {
  readonly session: Session;
  message: OutgoingMessage | undefined;
  reverse: ReverseDns | undefined;
  upstream: Upstream | undefined;
}

const TICK_MS = 1000;

/**
 * Runs SMTP sessions for the accept loop: feeds the sans-I/O core, keeps its deadlines with
 * one coarse timer, delivers its messages and answers its DNS questions (the store's are
 * forwarded to the accept loop). The same code runs inline and in a worker.
 */
export class SessionRunner {
  private readonly sessions = new Map<number, Running>();
  private readonly deliverer: Deliverer;
  private readonly dns: DnsClient;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly config: RunnerConfig, private readonly post: (message: FromRunner) => void, pid: number) {
    this.deliverer = new Spool(config.spoolDir, pid);
    this.dns = createDnsClient(config.dns.server, config.dns.timeoutMs, (type, status, seconds) => this.post({ t: "dns", type, status, seconds }));
  }

  handle(message: ToRunner): void {
    const now = Date.now();
    switch (message.t) {
      case "open": {
        const running: Running = {
          session: new Session(this.config.session, message.client, now, message.gate),
          message: undefined,
          reverse: undefined,
          upstream: undefined,
        };
        this.sessions.set(message.id, running);
        const ip = parseIP(message.client.address);
        if (ip !== null && !message.client.allowed) {
          void forwardConfirmedReverse(this.dns, ip).then((reverse) => {
            running.reverse = reverse;
            running.session.learnReverseDns(reverse);
          });
        }
        this.timer ??= setInterval(() => this.tick(), TICK_MS);
        if (message.early) this.apply(message.id, running, running.session.receive(message.early, now));
        return;
      }
      case "data":
        return this.feed(message.id, (session) => session.receive(message.bytes, now));
      case "tls":
        return this.feed(message.id, (session) => session.tlsStarted(message.ok, now));
      case "greylisted":
        return this.feed(message.id, (session) => session.greylisted(message.verdict, now));
      case "gone":
        return this.feed(message.id, (session) => session.clientClosed());
      case "shutdown":
        for (const [id, running] of this.sessions) this.apply(id, running, running.session.shutdown());
        return;
    }
  }


  /** One input to a session, which may have ended while the message was on its way. */
  private feed(id: number, input: (session: Session) => Output[]): void {
    const running = this.sessions.get(id);
    if (running) this.apply(id, running, input(running.session));
  }

  private tick(): void {
    const now = Date.now();
    for (const [id, running] of this.sessions) {
      if (running.session.deadline <= now) this.apply(id, running, running.session.tick(now));
    }
  }

  private apply(id: number, running: Running, outputs: Output[]): void {
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
            clientAddress: running.session.client.address,
            receivedAt: new Date(),
            hostname: this.config.session.hostname,
          };
          running.message = running.upstream ? relayMessage(running.upstream, context) : this.deliverer.begin(context);
          break;
        }
        case "upstream":
          this.ask(id, running, output.command);
          break;
        case "upstream-reset":
          running.upstream?.command("RSET").catch(() => {});
          break;
        case "message-data":
          running.message?.write(output.bytes);
          break;
        case "message-end":
          this.finish(id, running);
          break;
        case "message-abort":
          running.message?.abort();
          running.message = undefined;
          break;
        case "lookup-helo-name": {
          const ip = parseIP(running.session.client.address);
          if (ip !== null) void heloNameDns(this.dns, output.name, ip).then((outcome) => running.session.learnHeloDns(output.name, outcome));
          break;
        }
        case "lookup-greylist":
          this.post({ t: "greylist", id, triplet: output.triplet });
          break;
        case "lookup-mail-domain":
          void mailDomain(this.dns, output.domain).then((answer) => this.apply(id, running, running.session.resolved(answer, Date.now())));
          break;
      }
    }
    writeOut();
    if (running.session.closed && running.message === undefined) this.end(id, running);
  }

  /** Asks the upstream; when it cannot be had, the client is told to try again later. */
  private ask(id: number, running: Running, command: string): void {
    const upstream = running.upstream ??= new Upstream(this.config.upstream!, () => ({
      address: running.session.client.address,
      port: running.session.client.port,
      helo: running.session.facts.helo,
      name: running.reverse?.status === "pass" ? running.reverse.name : undefined,
      protocol: running.session.facts.tls ? "ESMTPS" : "ESMTP",
    }), (congested) => this.post({ t: congested ? "pause" : "resume", id }));
    upstream.command(command).then(
      (reply) => this.apply(id, running, running.session.upstreamReplied(reply, Date.now())),
      (error: Error) => {
        this.post({ t: "log", id, entry: { event: "UPSTREAM-FAILED", reason: error.message, action: "tempfail" } });
        const text = `451 4.4.1 ${this.config.session.hostname} Error: the mail server behind us is not available, try again later\r\n`;
        this.apply(id, running, running.session.upstreamReplied({ code: 451, text }, Date.now()));
      },
    );
  }

  private finish(id: number, running: Running): void {
    const message = running.message!;
    message.finish().then((result) => {
      running.message = undefined;
      this.post({
        t: "log",
        id,
        entry: result.ok
          ? { event: "DELIVERED", queue_id: result.id, action: running.upstream ? "relay" : "spool" }
          : { event: "DELIVERY-FAILED", queue_id: message.id, reason: result.reason, action: "tempfail" },
      });
      if (running.session.closed) return this.end(id, running);
      this.apply(id, running, running.session.delivered(result, Date.now()));
    });
  }

  private end(id: number, running: Running): void {
    if (!this.sessions.delete(id)) return;
    running.upstream?.quit();
    this.post({ t: "end", id, facts: { ...running.session.facts } });
    if (this.sessions.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
