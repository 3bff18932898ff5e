import { encodeProxyV2 } from "../net/proxy-protocol.ts";
import type { Extensions } from "../smtp/extensions.ts";
import { dotStuff } from "./dot-stuff.ts";
import { ehloKeywordsOf, extensionsOf } from "./ehlo-extensions.ts";
import { type Reply, ReplyReader, xtext } from "./reply-reader.ts";

export type UpstreamIdentity = "xclient" | "xforward" | "proxy" | "none" | "auto";

/** MXSCREEN_UPSTREAM_TLS: STARTTLS when offered (`may`, the certificate unchecked), required and checked (`verify`), or never. */
export type UpstreamTls = "may" | "verify" | "off";

export interface UpstreamSettings {
  /** For messages: `host:port` of the upstream. */
  readonly name: string;
  readonly identity: UpstreamIdentity;
  /** How long any one answer may take (MXSCREEN_UPSTREAM_TIMEOUT). */
  readonly timeoutMs: number;
  /** How long the answer to the final `.` may take: RFC 5321 4.5.3.2.6 says 10 minutes. */
  readonly dataEndTimeoutMs: number;
  /** Our name in EHLO. */
  readonly hostname: string;
  readonly tls: UpstreamTls;
}

/** Who the upstream should believe it is talking to: the client we screened. */
export interface ClientIdentity {
  readonly address: string;
  readonly port: number;
  /** The address and port the client connected to: the PROXY header's destination (zeros when unknown). */
  readonly local: { readonly address: string; readonly port: number } | undefined;
  readonly helo: string | undefined;
  /** A forward-confirmed reverse name, or undefined. */
  readonly name: string | undefined;
  readonly protocol: string;
}

/** The upstream's reply to a question, or why there is none (the connection failed, timed out, closed). */
export type UpstreamAnswer = { readonly ok: true; readonly reply: Reply } | { readonly ok: false; readonly reason: string };

export type UpstreamOutput =
  | { readonly type: "write"; readonly bytes: Uint8Array }
  /** The answer to the oldest question still open, in the order they were asked. */
  | { readonly type: "answer"; readonly answer: UpstreamAnswer }
  /** Close the connection: `graceful` after what was written (QUIT), else at once. */
  | { readonly type: "close"; readonly graceful: boolean }
  /** The upstream said 220 to STARTTLS: start the TLS handshake as the client, then call `tlsStarted()`. */
  | { readonly type: "starttls" }
  /**
   * A connection handed over from an earlier session failed before it served this one, or its
   * TLS handshake failed under `may`: it was closed (the output before this one); open a new
   * one, on which the questions waiting go on.
   */
  | { readonly type: "reconnect"; readonly reason: string };

/**
 * `handover`: the connection served an earlier client and is being introduced to the next one
 * (`introduce()`); a failure then costs a new connection, not this client's question.
 */
type Phase =
  | { readonly at: "connecting" }
  | { readonly at: "greeting" }
  | { readonly at: "ehlo"; readonly again: boolean; readonly handover: boolean }
  /** STARTTLS sent after our first EHLO; `ehlo` is that EHLO's reply, to go on from in plaintext if it is refused (`may`). */
  | { readonly at: "starttls"; readonly ehlo: Reply }
  | { readonly at: "tls-handshake" }
  | { readonly at: "xclient"; readonly handover: boolean }
  /** RSET sent to prove a handed-over connection alive (no XCLIENT to send on it). */
  | { readonly at: "probe" }
  /**
   * XFORWARD lines sent before the MAIL being asked (`left` of their replies still to come),
   * the MAIL behind them when the upstream offers PIPELINING (`mailSent`). `handover`: the first
   * ones on a connection handed over, whose failure costs the connection, not the MAIL.
   */
  | { readonly at: "xforward"; readonly left: number; readonly mailSent: boolean; readonly handover: boolean }
  | { readonly at: "ready" }
  | { readonly at: "done"; readonly reason: string };

interface Question {
  readonly line: string;
  /** Asked for our own sake (RSET): nobody waits for its answer. */
  readonly silent: boolean;
}

/**
 * Commands Postfix's smtpd counts against a connection (smtpd_junk_command_limit; 1 under
 * stress), and our own EHLO and RSET are among them.
 */
const JUNK = /^(EHLO|HELO|RSET|NOOP|VRFY|ETRN)\b/i;
/** Junk commands since the last message after which a connection still goes to another client. */
const MOST_JUNK_TO_HAND_ON = 1;

const encoder = new TextEncoder();
const UNKNOWN_DESTINATION = { address: "0.0.0.0", port: 0 };
/**
 * Postfix answers 501 to an XCLIENT or XFORWARD whose NAME or HELO is longer than a host name
 * can be (smtpd.c: VALID_HOSTNAME_LEN), which would cost the client its mail: such a name goes as
 * unavailable, the client's own EHLO after XCLIENT still carries it.
 */
const MOST_HOST_NAME = 255;

/** A client's host name (HELO, reverse DNS) as an XCLIENT or XFORWARD attribute; Postfix counts its octets, UTF-8 ones included. */
function hostAttribute(name: string | undefined): string {
  return name && encoder.encode(name).length <= MOST_HOST_NAME ? xtext(name) : "[UNAVAILABLE]";
}

/**
 * One SMTP client connection to the MTA behind us, sans I/O: connection events, bytes and the
 * time go in; bytes to write, answers and a close come out. It introduces the client (XCLIENT
 * or a PROXY v2 header), then asks one question at a time. Whatever the upstream does (refuse,
 * reset, close, stall, answer late, talk nonsense), every question gets exactly one answer, and
 * a failure is an answer with a reason: the runner turns it into a 4xx for that one client.
 *
 * A connection can serve one client after another (`reusable`, then `introduce()`): between
 * them no transaction is open, and the next client is introduced again (XCLIENT; with no
 * identity to send, an RSET proves the connection alive). A PROXY header is per connection, so
 * a connection that sent one is never reused.
 */
export class UpstreamMachine {
  private phase: Phase = { at: "connecting" };
  private reader = new ReplyReader();
  private readonly queue: Question[] = [];
  private asked: Question | undefined;
  private out: UpstreamOutput[] = [];
  private due: number;
  /** This connection introduced its client with XCLIENT (the upstream offered it, or was told to). */
  private xclientSent = false;
  /** A MAIL was sent and its transaction not yet ended by the final dot, an RSET or a refusal. */
  private inTransaction = false;
  /** The upstream did something after which we would not trust this connection with another client. */
  private spoiled = false;
  /**
   * Refusals and junk commands since the upstream last accepted a message on this connection:
   * Postfix counts both per connection (XCLIENT clears neither) and forgives them only for a
   * message it accepts; past smtpd_soft_error_limit it holds every reply back a second, at
   * smtpd_hard_error_limit it hangs up. A connection with a refusal, or more than
   * MOST_JUNK_TO_HAND_ON junk commands, is not handed on, so one client's refused recipients
   * never slow or fail the next client's session.
   */
  private refusedSinceMessage = 0;
  private junkSinceMessage = 0;
  private xclientRefusedOnHandover = false;
  /** Counts the connections this machine has had: replies read from one are not for the next. */
  private generation = 0;
  /** What the upstream's last EHLO reply on this connection offered (the one after XCLIENT, when sent). */
  private offered: Extensions | undefined;
  /** The last EHLO reply read on this connection and what it offered. */
  private lastEhlo: { readonly text: string; readonly extensions: Extensions } | undefined;
  /** TLS is up on this connection. */
  private secured = false;
  /** The XFORWARD attributes the upstream's EHLO listed (identity `xforward`). */
  private xforwardNames: ReadonlySet<string> = new Set();
  /**
   * The upstream's EHLO offered PIPELINING (RFC 2920): XFORWARD and its MAIL go in one write,
   * and a QUIT may follow an RSET of ours still unanswered.
   */
  private pipelining = false;
  /** Handed over to a new client, whose first XFORWARD has not been answered yet. */
  private handedOver = false;
  /**
   * Why a TLS handshake with this upstream failed, under `may`: like Postfix's client, the
   * connections that follow go on in plaintext rather than refuse the mail.
   */
  private tlsFailure: string | undefined;

  constructor(private readonly settings: UpstreamSettings, private client: ClientIdentity, now: number) {
    this.due = now + settings.timeoutMs;
  }

  /** When the answer we wait for is overdue: call `tick` then; Infinity while nothing is awaited. */
  get deadline(): number {
    if (this.phase.at === "done" || (this.phase.at === "ready" && this.asked === undefined)) return Infinity;
    return this.due;
  }

  get failed(): string | undefined {
    return this.phase.at === "done" ? this.phase.reason : undefined;
  }

  /** Idle between transactions and trusted: it can be handed over to another client's session. */
  get reusable(): boolean {
    return this.phase.at === "ready" && this.asked === undefined && this.queue.length === 0 && !this.inTransaction && !this.spoiled &&
      this.refusedSinceMessage === 0 && this.junkSinceMessage <= MOST_JUNK_TO_HAND_ON && this.settings.identity !== "proxy";
  }

  get usesXclient(): boolean {
    return this.xclientSent;
  }

  /** The upstream's extensions, once its EHLO reply on this connection is known. */
  get extensions(): Extensions | undefined {
    return this.offered;
  }

  get tls(): boolean {
    return this.secured;
  }

  /** Under `may`, why STARTTLS failed and the connection went on in plaintext; undefined otherwise. */
  get tlsFallback(): string | undefined {
    return this.tlsFailure;
  }

  /**
   * The TLS handshake after STARTTLS ended: on success the session with the upstream starts over
   * inside TLS (RFC 3207 4.2: EHLO again, nothing said before counts). A failure fails the
   * connection; under `may`, a new one goes on without STARTTLS (what the handshake left of this
   * one cannot be trusted to carry plaintext).
   */
  tlsStarted(failure: string | undefined, now: number): UpstreamOutput[] {
    if (this.phase.at !== "tls-handshake") return [];
    if (failure !== undefined) {
      const reason = `TLS handshake with ${this.settings.name} failed: ${failure}`;
      if (this.settings.tls !== "may") this.broken(reason, now);
      else {
        this.tlsFailure = reason;
        this.reconnect(reason, now);
      }
      return this.flush();
    }
    this.secured = true;
    this.reader = new ReplyReader();
    this.due = now + this.settings.timeoutMs;
    this.phase = { at: "ehlo", again: false, handover: false };
    this.write(encoder.encode(`EHLO ${this.settings.hostname}\r\n`));
    return this.flush();
  }

  /**
   * The upstream refused XCLIENT for a second client on one connection (Postfix does, unless the
   * first client's address is in smtpd_authorized_xclient_hosts too): connections introduced with
   * XCLIENT cannot be reused with this upstream.
   */
  get refusesSecondXclient(): boolean {
    return this.xclientRefusedOnHandover;
  }

  /**
   * Hands this idle connection over to another client's session: XCLIENT with its attributes
   * (the upstream answers with a new greeting, then EHLO again), or RSET where none is sent.
   * Questions asked meanwhile wait; if the connection fails first, a new one is made for them.
   */
  introduce(client: ClientIdentity, now: number): UpstreamOutput[] {
    if (!this.reusable) throw new Error(`introduce() called on an upstream connection that is not reusable (${this.phase.at})`);
    this.client = client;
    this.due = now + this.settings.timeoutMs;
    // The XFORWARD before the client's first MAIL proves the connection alive, as RSET would.
    if (this.settings.identity === "xforward") this.handedOver = true;
    else if (this.xclientSent) {
      this.phase = { at: "xclient", handover: true };
      this.write(encoder.encode(`XCLIENT ${this.xclientAttributes()}\r\n`));
    } else {
      this.phase = { at: "probe" };
      this.write(encoder.encode("RSET\r\n"));
    }
    return this.flush();
  }

  /** The TCP connection is up. */
  connected(now: number): UpstreamOutput[] {
    if (this.phase.at !== "connecting") return [];
    this.phase = { at: "greeting" };
    this.due = now + this.settings.timeoutMs;
    if (this.settings.identity === "proxy") this.write(encodeProxyV2(this.client, this.client.local ?? UNKNOWN_DESTINATION));
    return this.flush();
  }

  /** The connection could not be made, or ended (reset, closed) before we were done with it. */
  lost(reason: string, now: number): UpstreamOutput[] {
    this.broken(
      this.phase.at === "connecting" ? `cannot connect to ${this.settings.name}: ${reason}` : `${this.settings.name} ${reason}`,
      now,
    );
    return this.flush();
  }

  received(bytes: Uint8Array, now: number): UpstreamOutput[] {
    if (this.phase.at === "done") return [];
    // Bun may hand us the greeting before it reports the connection.
    if (this.phase.at === "connecting") this.out.push(...this.connected(now));
    let replies: Reply[];
    try {
      replies = this.reader.push(bytes);
    } catch (error) {
      this.broken(`${this.settings.name}: ${(error as Error).message}`, now);
      return this.flush();
    }
    const generation = this.generation;
    for (const reply of replies) {
      if (this.failed !== undefined || this.generation !== generation) break;
      this.replied(reply, now);
    }
    return this.flush();
  }

  tick(now: number): UpstreamOutput[] {
    if (now < this.deadline) return [];
    const waited = this.asked?.line === "." ? this.settings.dataEndTimeoutMs : this.settings.timeoutMs;
    this.broken(
      this.phase.at === "connecting"
        ? `no connection to ${this.settings.name} within ${waited} ms`
        : `${this.settings.name} did not answer within ${waited} ms`,
      now,
    );
    return this.flush();
  }

  /** Asks a command (without CRLF); its answer comes out once everything before it is answered. */
  ask(line: string, now: number): UpstreamOutput[] {
    return this.enqueue({ line, silent: false }, now);
  }

  /** Drops the upstream's transaction (RSET); nobody waits for the answer. */
  reset(now: number): UpstreamOutput[] {
    if (this.phase.at === "done" || this.phase.at === "connecting" && this.queue.length === 0) return [];
    return this.enqueue({ line: "RSET", silent: true }, now);
  }

  /** Message content as the session gives it (unstuffed whole lines ending CRLF), after the upstream's 354. */
  data(bytes: Uint8Array): UpstreamOutput[] {
    if (this.phase.at !== "ready" || this.asked !== undefined) return [];
    this.write(dotStuff(bytes));
    return this.flush();
  }

  /** Ends the message: its answer is the upstream's verdict on it. */
  endData(now: number): UpstreamOutput[] {
    return this.enqueue({ line: ".", silent: false }, now);
  }

  /** A message we will not finish: the only way to take back DATA is to hang up. */
  abort(): UpstreamOutput[] {
    this.fail("message abandoned", false);
    return this.flush();
  }

  /**
   * Says goodbye without waiting for the answer. Behind an RSET of ours still on its way (a
   * client's RSET, then its QUIT) too, where the upstream takes pipelined commands: a hang-up
   * there is what Postfix logs as a lost connection.
   */
  quit(): UpstreamOutput[] {
    if (this.phase.at === "done") return [];
    const idle = this.phase.at === "ready" && this.queue.length === 0 &&
      (this.asked === undefined || (this.asked.silent && this.pipelining));
    if (idle) this.write(encoder.encode("QUIT\r\n"));
    this.fail("closed", idle);
    return this.flush();
  }

  private enqueue(question: Question, now: number): UpstreamOutput[] {
    if (this.phase.at === "done") {
      if (!question.silent) this.out.push({ type: "answer", answer: { ok: false, reason: this.phase.reason } });
      return this.flush();
    }
    this.queue.push(question);
    this.pump(now);
    return this.flush();
  }

  private pump(now: number): void {
    if (this.phase.at !== "ready" || this.asked !== undefined) return;
    const next = this.queue.shift();
    if (next === undefined) return;
    this.asked = next;
    this.due = now + (next.line === "." ? this.settings.dataEndTimeoutMs : this.settings.timeoutMs);
    const mail = /^MAIL /i.test(next.line);
    if (mail) this.inTransaction = true;
    // Postfix forgets XFORWARD's attributes when a transaction ends: they precede every MAIL.
    const lines = mail && this.settings.identity === "xforward" ? this.xforwardLines() : [];
    if (lines.length === 0) return this.write(encoder.encode(`${next.line}\r\n`));
    this.phase = { at: "xforward", left: lines.length, mailSent: this.pipelining, handover: this.handedOver };
    this.write(encoder.encode(lines.map((line) => `${line}\r\n`).join("") + (this.pipelining ? `${next.line}\r\n` : "")));
  }

  private replied(reply: Reply, now: number): void {
    const { name, hostname } = this.settings;
    this.due = now + this.settings.timeoutMs;
    switch (this.phase.at) {
      case "connecting":
      case "done":
        return;
      case "greeting":
        if (reply.code !== 220) return this.broken(`${name} greeted with ${oneLine(reply)}`, now);
        this.phase = { at: "ehlo", again: false, handover: false };
        return this.write(encoder.encode(`EHLO ${hostname}\r\n`));
      case "ehlo": {
        this.junkSinceMessage++;
        if (reply.code !== 250) {
          return this.broken(
            `${name} answered ${this.phase.again && this.greetsWithHelo ? "HELO" : "EHLO"}${
              this.phase.again ? " after XCLIENT" : ""
            } with ${oneLine(reply)}`,
            now,
          );
        }
        if (!this.phase.again && !this.secured && this.tlsFailure === undefined && this.settings.tls !== "off") {
          if (/^250[ -]STARTTLS\b/im.test(reply.text)) {
            this.phase = { at: "starttls", ehlo: reply };
            return this.write(encoder.encode("STARTTLS\r\n"));
          }
          if (this.settings.tls === "verify") {
            return this.broken(`${name} does not offer STARTTLS, which MXSCREEN_UPSTREAM_TLS=verify requires`, now);
          }
        }
        return this.introduced(reply, now);
      }
      case "starttls":
        if (reply.code === 220) {
          this.phase = { at: "tls-handshake" };
          this.out.push({ type: "starttls" });
          return;
        }
        if (this.settings.tls === "verify") return this.broken(`${name} refused STARTTLS: ${oneLine(reply)}`, now);
        // Opportunistic (RFC 3207 4.1): a refusal leaves the session as it was, in plaintext.
        return this.introduced(this.phase.ehlo, now);
      case "tls-handshake":
        return this.broken(`${name} sent a reply during the TLS handshake: ${oneLine(reply)}`, now);
      case "xclient":
        if (reply.code !== 220) {
          if (this.phase.handover && reply.code >= 500) this.xclientRefusedOnHandover = true;
          return this.broken(
            `${name} refused XCLIENT${this.phase.handover ? " for a second client on one connection" : ""}: ${oneLine(reply)}`,
            now,
          );
        }
        this.phase = { at: "ehlo", again: true, handover: this.phase.handover };
        // Postfix takes the name of the HELO or EHLO after XCLIENT over XCLIENT's HELO=, and an
        // EHLO makes the session ESMTP whatever PROTO said (smtpd.c helo_cmd, ehlo_cmd): the
        // client's own greeting, repeated, is what it logs and writes in Received:.
        return this.write(encoder.encode(`${this.greetsWithHelo ? "HELO" : "EHLO"} ${this.client.helo ?? hostname}\r\n`));
      case "xforward": {
        if (reply.code !== 250) return this.broken(`${name} refused XFORWARD: ${oneLine(reply)}`, now);
        const { left, mailSent } = this.phase;
        if (left > 1) {
          this.phase = { ...this.phase, left: left - 1 };
          return;
        }
        this.handedOver = false;
        this.phase = { at: "ready" };
        if (!mailSent) this.write(encoder.encode(`${this.asked!.line}\r\n`));
        return;
      }
      case "probe":
        this.junkSinceMessage++;
        if (reply.code !== 250) return this.broken(`${name} answered RSET with ${oneLine(reply)}`, now);
        this.phase = { at: "ready" };
        return this.pump(now);
      case "ready": {
        const asked = this.asked;
        if (asked === undefined) return this.broken(`${name} sent a reply nobody asked for: ${oneLine(reply)}`, now);
        this.asked = undefined;
        if (!asked.silent) this.out.push({ type: "answer", answer: { ok: true, reply } });
        // 421: the upstream is closing the channel (RFC 5321 3.8); nothing more can be asked of it.
        if (reply.code === 421) return this.broken(`${name} is closing the connection: ${oneLine(reply)}`, now);
        this.transactionAnswered(asked.line, reply.code);
        return this.pump(now);
      }
    }
  }

  /** After the EHLO reply that counts (inside TLS, when it was started): XCLIENT next, or ready for questions. */
  private introduced(reply: Reply, now: number): void {
    const { name, identity } = this.settings;
    const again = this.phase.at === "ehlo" && this.phase.again;
    const offersXclient = /^250[ -]XCLIENT\b/im.test(reply.text);
    if (!(again && this.greetsWithHelo)) this.pipelining = /^250[ -]PIPELINING\b/im.test(reply.text);
    if (identity === "xforward") {
      const offered = /^250[ -]XFORWARD\b(.*)$/im.exec(reply.text);
      if (!offered) {
        return this.broken(`${name} does not offer XFORWARD to us: authorise this host (Postfix: smtpd_authorized_xforward_hosts)`, now);
      }
      this.xforwardNames = new Set(offered[1].trim().toUpperCase().split(/\s+/));
    }
    if (again || identity === "none" || identity === "proxy" || identity === "xforward" || (identity === "auto" && !offersXclient)) {
      // A reply to HELO lists no extensions: what the upstream offers is still what its last EHLO said.
      if (!(again && this.greetsWithHelo)) this.offered = this.extensionsIn(reply.text);
      this.phase = { at: "ready" };
      return this.pump(now);
    }
    if (!offersXclient) {
      return this.broken(`${name} does not offer XCLIENT to us: authorise this host (Postfix: smtpd_authorized_xclient_hosts)`, now);
    }
    this.phase = { at: "xclient", handover: false };
    this.xclientSent = true;
    this.write(encoder.encode(`XCLIENT ${this.xclientAttributes()}\r\n`));
  }

  /** The extensions an EHLO reply offers; a warm connection hears the same reply for every client it is handed. */
  private extensionsIn(text: string): Extensions {
    if (this.lastEhlo?.text !== text) this.lastEhlo = { text, extensions: extensionsOf(ehloKeywordsOf(text)) };
    return this.lastEhlo.extensions;
  }

  /** Keeps track of whether a transaction is open, and whether the connection can still be trusted with another client. */
  private transactionAnswered(line: string, code: number): void {
    const positive = code >= 200 && code < 300;
    if (line === "." && positive) {
      this.refusedSinceMessage = 0;
      this.junkSinceMessage = 0;
    } else {
      if (code >= 400) this.refusedSinceMessage++;
      if (JUNK.test(line)) this.junkSinceMessage++;
    }
    if (line === "." || (/^MAIL /i.test(line) && !positive)) this.inTransaction = false;
    else if (line === "RSET") {
      if (positive) this.inTransaction = false;
      else this.spoiled = true;
    }
  }

  /** The client greeted us with HELO: after XCLIENT the upstream is greeted the same way. */
  private get greetsWithHelo(): boolean {
    return this.client.protocol === "SMTP";
  }

  private xclientAttributes(): string {
    const client = this.client;
    return [
      `ADDR=${client.address.includes(":") ? `IPV6:${client.address}` : client.address}`,
      `PORT=${client.port}`,
      `NAME=${hostAttribute(client.name)}`,
      `HELO=${hostAttribute(client.helo)}`,
      `PROTO=${client.protocol === "SMTP" ? "SMTP" : "ESMTP"}`,
    ].join(" ");
  }

  /**
   * The client's attributes in XFORWARD commands (those the upstream listed), in two lines as
   * Postfix's own client sends them, each well below its 512-octet line limit: NAME, ADDR and
   * PORT, then PROTO, HELO and SOURCE.
   */
  private xforwardLines(): string[] {
    const client = this.client;
    const groups = [
      [
        ["NAME", hostAttribute(client.name)],
        ["ADDR", client.address.includes(":") ? `IPV6:${client.address}` : client.address],
        ["PORT", String(client.port)],
      ],
      [
        ["PROTO", client.protocol === "SMTP" ? "SMTP" : "ESMTP"],
        ["HELO", hostAttribute(client.helo)],
        ["SOURCE", "REMOTE"],
      ],
    ];
    return groups
      .map((group) => group.filter(([key]) => this.xforwardNames.has(key)).map(([key, value]) => `${key}=${value}`))
      .filter((group) => group.length > 0)
      .map((group) => `XFORWARD ${group.join(" ")}`);
  }

  /**
   * The connection failed (reset, closed, timed out, refused, talked nonsense). While a
   * handed-over connection is introduced to its new client, that costs the connection, not the
   * client's questions: it is closed, a new one asked for, and the questions wait for that.
   */
  private broken(reason: string, now: number): void {
    const handover = this.phase.at === "probe" ||
      ((this.phase.at === "xclient" || this.phase.at === "ehlo" || this.phase.at === "xforward") && this.phase.handover);
    if (!handover) return this.fail(reason, false);
    this.reconnect(reason, now);
  }

  /** Closes this connection and asks for a new one, on which the questions waiting go on. */
  private reconnect(reason: string, now: number): void {
    this.out.push({ type: "close", graceful: false }, { type: "reconnect", reason });
    // A MAIL already asked behind the XFORWARD that failed is asked again on the new connection.
    if (this.asked !== undefined) this.queue.unshift(this.asked);
    this.asked = undefined;
    this.handedOver = false;
    this.generation++;
    this.phase = { at: "connecting" };
    this.reader = new ReplyReader();
    this.xclientSent = false;
    this.secured = false;
    this.inTransaction = false;
    this.refusedSinceMessage = 0;
    this.junkSinceMessage = 0;
    this.spoiled = this.xclientRefusedOnHandover;
    this.due = now + this.settings.timeoutMs;
  }

  /** Every open question is answered with the reason; later ones will be too. */
  private fail(reason: string, graceful: boolean): void {
    if (this.phase.at === "done") return;
    this.phase = { at: "done", reason };
    for (const question of [...(this.asked ? [this.asked] : []), ...this.queue.splice(0)]) {
      if (!question.silent) this.out.push({ type: "answer", answer: { ok: false, reason } });
    }
    this.asked = undefined;
    this.out.push({ type: "close", graceful });
  }

  private write(bytes: Uint8Array): void {
    this.out.push({ type: "write", bytes });
  }

  private flush(): UpstreamOutput[] {
    const out = this.out;
    this.out = [];
    return out;
  }
}

function oneLine(reply: Reply): string {
  return reply.text.trim().replace(/\r\n/g, " / ").slice(0, 200);
}
