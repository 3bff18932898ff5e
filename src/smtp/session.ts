import { dnswlStanding } from "../dnsbl/index.ts";
import { checksAt, effectiveAction } from "../checks/registry.ts";
import { EHLO_REFUSAL, refusesEhlo } from "../checks/ehlo-refused.ts";
import { MessageContent } from "./message-content.ts";
import { mailSinceReset } from "../checks/rset.ts";
import type { CheckFacts, ParsedCommand, Stage } from "../checks/types.ts";
import type { DnsAnswer, HeloDns, ReverseDns } from "../dns/types.ts";
import { greylistTriplet } from "../greylist/index.ts";
import { saysUnknownRecipient } from "../dictionary/index.ts";
import { bytesToText } from "../log/escape.ts";
import { concatBytes } from "./bytes.ts";
import { ChunkLines } from "./chunk-lines.ts";
import { type Line, LineReader } from "./line-reader.ts";
import { domainOf, parsePath } from "./path.ts";
import { ehloKeywords, type Extensions, SPOOL_EXTENSIONS, UNKNOWN_UPSTREAM } from "./extensions.ts";
import { mailParameters, rcptParameters, unicodeRefusal } from "./mail-parameters.ts";
import { boundedReply, reply } from "../checks/reply.ts";
import { type Handler, HELP_REPLY, VERBS } from "./verbs.ts";
import { splitReply, stutters, tarpitDelayMs, tarpitHits } from "./pacing.ts";
import type {
  ClientInfo,
  DeliveryResult,
  EndReason,
  Envelope,
  GateFacts,
  Output,
  SessionConfig,
  SessionFacts,
  UpstreamReply,
} from "./types.ts";

/** The stages the session runs; the gate runs `accept` and `greet`. */
type SessionStage = Exclude<Stage, "accept" | "greet">;

/**
 * What the session waits for, with what it needs when the answer comes (h11's way: the state
 * carries its payload, so the two cannot disagree). Input is not read meanwhile.
 * `dns`: MAIL waits for `resolved()`, its sender domain's answer; `greylist`: RCPT waits for
 * `greylisted()`, the store's word on its triplet; `reverse-dns`: DATA, or a RCPT about to be
 * greylisted (its triplet names the client's confirmed domain), waits for `learnReverseDns()`; `upstream`: a command waits for
 * `upstreamReplied()`; `delivery`: the final dot waits for `delivered()`.
 */
type Waiting =
  | { readonly for: "dns"; readonly mail: Transaction }
  | { readonly for: "greylist"; readonly transaction: Transaction; readonly recipient: Recipient }
  | {
    readonly for: "reverse-dns";
    readonly transaction: Transaction;
    readonly then: "data" | { readonly greylist: Recipient } | { readonly chunk: ChunkStart };
  }
  | { readonly for: "upstream"; readonly question: UpstreamQuestion }
  | { readonly for: "delivery" };

/**
 * A BDAT chunk being read (RFC 3030): `left` of its `size` octets still to come; `refusal`, when
 * set, is what the chunk gets once read instead of being taken (the client sends it whatever
 * we answer, so it is always read to its end).
 */
interface Chunk {
  readonly at: "chunk";
  left: number;
  readonly size: number;
  readonly last: boolean;
  readonly refusal: string | undefined;
}

/** A BDAT command's chunk, until the message it belongs to has begun. */
interface ChunkStart {
  readonly size: number;
  readonly last: boolean;
}

/**
 * Where the session is: greeted (no HELO yet), ready, inside a transaction (`mail`, `rcpt`),
 * reading message lines (`data`), reading a BDAT chunk, between BDAT chunks (`chunks`), in a
 * STARTTLS handshake, waiting for an answer, or closed (which ignores everything).
 */
type State = "greeted" | "ready" | "mail" | "rcpt" | "data" | "chunks" | "tls-handshake" | "closed" | Chunk | Waiting;

/** The client's reverse DNS: not asked for (an allowed client), asked for with `lookup-reverse` and awaited, or known. */
type Reverse = { readonly kind: "unasked" } | { readonly kind: "asked" } | { readonly kind: "known"; readonly answer: ReverseDns };

/** RFC 5321 4.5.1: these must be accepted for every domain we receive mail for, and bare. */
const ALWAYS_ACCEPTED = ["postmaster", "abuse"];
/** Distinct domains a session's refused recipients are counted under: a session cannot grow the fleet's counters without bound. */
const MAX_BAD_RECIPIENT_DOMAINS = 20;

/**
 * Input a session holds while it waits (DNS, the store, the upstream, the disk). The runner stops
 * reading from the socket while the session waits; this bounds what was already on its way. A
 * client that pipelines within RFC 2920 sends a group of commands, far less than this.
 */
export const MAX_WAITING_INPUT = 512 * 1024;

/** Safety net for clients that only produce errors (Postfix's smtpd_hard_error_limit is 20). */
const HARD_ERROR_LIMIT = 20;

/** How far past the line limit an unended command line may stream after its 500 before the connection is closed. */
const OVERFLOW_LIMITS = 4;

const decoder = new TextDecoder();
const CR = 0x0d;

interface Answering {
  readonly stage: "MAIL" | "RCPT" | "DATA";
  readonly from: string | undefined;
  readonly to: string | undefined;
}

/** The mailbox of a MAIL FROM:<…> or RCPT TO:<…> argument, as the client wrote it (for the log only). */
function pathText(arg: string): string | undefined {
  return /<([^>]*)>/.exec(arg)?.[1];
}

/** `size [LAST]`, RFC 3030's BDAT argument; undefined when it is not one. */
function bdatArgument(arg: string): ChunkStart | undefined {
  const m = /^(\d{1,15})( +LAST)?$/i.exec(arg);
  return m ? { size: Number(m[1]), last: m[2] !== undefined } : undefined;
}

/** The command (or message end) a reply answers, and RFC 2920's rule for it: whether the next command may be sent before that reply. */
interface Answered {
  readonly verb: string;
  readonly endsGroup: boolean;
}

/** RFC 2920 3.1: the end of a message's data may be followed by the next commands without waiting. */
const MESSAGE_END: Answered = { verb: ".", endsGroup: false };

/** Facts about the command or message at hand, as opposed to the session's running facts. */
type MomentFacts = "command" | "recipient" | "sender" | "senderDomainAnswer" | "bounceNamesUs" | "greylist";

type UpstreamQuestion =
  | { readonly kind: "mail"; readonly transaction: Transaction }
  | { readonly kind: "rcpt"; readonly transaction: Transaction; readonly recipient: Recipient }
  | { readonly kind: "data"; readonly envelope: Envelope; readonly chunk: ChunkStart | undefined };

interface Transaction {
  from: string;
  recipients: string[];
  declaredSize: number | undefined;
  /** RFC 6531: the client declared SMTPUTF8, so its addresses may be UTF-8. */
  readonly smtputf8: boolean;
  /** MAIL FROM's parameters as the upstream gets them (` SIZE=n BODY=8BITMIME`…), or "". */
  readonly parameters: string;
  readonly content: MessageContent;
  /** The message came in BDAT chunks (then DATA may not follow), cut into lines here. */
  chunks: ChunkLines | undefined;
}

/** A RCPT being answered: its mailbox, and its parameters as the upstream gets them (` NOTIFY=…`), or "". */
interface Recipient {
  readonly mailbox: string;
  readonly parameters: string;
}

/**
 * One SMTP server session, sans I/O: bytes and the time go in, replies and actions come out.
 * A client's misbehaviour becomes a reply; only a broken invariant on our side throws.
 */
export class Session {
  readonly facts: SessionFacts = {
    helo: undefined,
    helos: [],
    commands: 0,
    where: "CONNECT",
    errors: 0,
    unknownCommands: 0,
    bareLineFeeds: 0,
    injectedBytes: 0,
    tls: false,
    recipients: 0,
    badRecipients: 0,
    badRecipientDomains: [],
    resets: 0,
    transactions: 0,
    pacedReplies: 0,
    transactionsAtReset: 0,
    transactionResets: 0,
    chunks: 0,
    pipeliningOffered: false,
    ehloRefusedUnanswered: false,
    messages: 0,
    tempfails: 0,
    lastReply: undefined,
    end: undefined,
    dnsblScore: undefined,
    heloDns: undefined,
    fcrdns: undefined,
    findings: [],
  };

  private state: State = "greeted";
  private protocol: "SMTP" | "ESMTP" | "ESMTPS" = "SMTP";
  private transaction: Transaction | undefined;
  private reader: LineReader;
  private lastActivity: number;
  private shuttingDown = false;
  /** Set by `banned()`: the goodbye is this 421, not the shutdown's. */
  private bannedReply: string | undefined;
  /** A message-begin was emitted and neither its end nor an abort yet. */
  private messageOpen = false;
  /** The mail command being answered, for the `refused` fact of a 4xx or 5xx to it. */
  private answering: Answering | undefined;
  /** The client shut down its sending side: answer what it sent, then close. */
  private inputDone = false;
  private out: Output[] = [];
  private dataParts: Uint8Array[] = [];
  /** The reply every RCPT but postmaster@/abuse@ gets: a HELO-stage failure answered late. */
  private delayedRejection: string | undefined;
  /** On a DNSWL at or below MXSCREEN_DNSWL_THRESHOLD: no further check runs. */
  private readonly allowlisted: boolean;
  private reverse: Reverse = { kind: "unasked" };
  /** What the mail's way out takes (the upstream's EHLO, as far as it is known; or the spool). */
  private extensions: Extensions;
  /** What the last EHLO reply offered on its behalf: MAIL and RCPT accept those parameters only. */
  private offered: Extensions = UNKNOWN_UPSTREAM;
  /** A check of the RCPT at hand sends its recipient through greylisting (consequence `greylist`). */
  private greylistDemanded = false;
  /** The command or message end the replies being written answer. */
  private answered: Answered | undefined;
  /** The last paced reply's command, until the next command is read: bytes that arrive before its final line are early. */
  private paced: Answered | undefined;
  /** Bytes of the next command arrived before the final line of the paced reply to this one. */
  private early: Answered | undefined;
  constructor(
    private readonly config: SessionConfig,
    readonly client: ClientInfo,
    now: number,
    private readonly gate: GateFacts = { dnsbl: [] },
  ) {
    this.reader = new LineReader(config.maxLineLength);
    this.lastActivity = now;
    this.extensions = config.relay ? UNKNOWN_UPSTREAM : SPOOL_EXTENSIONS;
    const dnswl = dnswlStanding(gate.dnsbl, config.checks);
    this.facts.dnsblScore = dnswl?.score;
    this.allowlisted = dnswl?.allowlisted ?? false;
    // Connect-stage checks only delay or record: there is no command to answer yet.
    this.runChecks("connect");
  }

  /**
   * When `tick` must be called next if nothing else happens (RFC 5321 4.5.3.2 timeouts). Each
   * line, command or message content, must be complete by then: the time counts from when the
   * session began waiting for it, not from the client's last byte (Postfix's
   * smtpd_per_record_deadline), so a byte now and then never holds the connection.
   */
  get deadline(): number {
    const timeout = this.state === "data" || this.chunk !== undefined ? this.config.dataTimeoutMs : this.config.commandTimeoutMs;
    return this.lastActivity + (this.gate.stress ? Math.min(timeout, this.config.stressTimeoutMs) : timeout);
  }

  get closed(): boolean {
    return this.state === "closed";
  }

  /** SMTP after HELO, ESMTP after EHLO (ESMTPS inside TLS): what the upstream is told the client spoke (XCLIENT PROTO). */
  get spoken(): "SMTP" | "ESMTP" | "ESMTPS" {
    return this.protocol;
  }

  /**
   * Waiting for an answer (DNS, the store, the upstream, the disk): input is not being read, so
   * the runner stops reading from the socket. Not during a TLS handshake, which must read.
   */
  get waiting(): boolean {
    return typeof this.state === "object" && "for" in this.state;
  }

  /** A message has begun and is being read (DATA, or BDAT chunks): what ends the session abandons it. */
  private get inMessage(): boolean {
    return this.state === "data" || this.state === "chunks" || this.chunk !== undefined;
  }

  private get chunk(): Chunk | undefined {
    return typeof this.state === "object" && "at" in this.state ? this.state : undefined;
  }

  /**
   * `finalsWritten`: how many paced replies' final lines the I/O layer had written when these
   * bytes arrived. Fewer than this session has paced means they came before a final line, also
   * of a reply still on its way to the I/O layer (a worker's answer crosses a thread).
   */
  receive(bytes: Uint8Array, now: number, finalsWritten?: number): Output[] {
    if (this.state === "closed" || this.inputDone) return [];
    if (finalsWritten !== undefined && finalsWritten < this.facts.pacedReplies) this.early ??= this.paced;
    // Bytes that come while a command is still being answered were sent before its reply, as
    // if they had come in its read; not after a message's end (judged in neither case), nor
    // after BDAT, whose chunk follows it unasked.
    if (this.waiting && this.answered !== MESSAGE_END && this.answered?.verb !== "BDAT") this.early ??= this.answered;
    if (this.state === "tls-handshake") {
      this.facts.injectedBytes += bytes.length;
      return [];
    }
    this.reader.push(bytes);
    if (this.waiting && this.reader.pending > MAX_WAITING_INPUT) {
      this.send(reply(421, "4.7.0", `${this.config.hostname} Error: too much input sent without waiting for replies`));
      this.close("errors");
      return this.flush();
    }
    if (this.drain()) this.touch(now);
    return this.flush();
  }

  /**
   * The client shut down its sending side (a half-close). Not "gone": every command it sent is
   * still answered, then the connection is closed (Exim sends `.`, QUIT and a FIN in one go, and
   * would send the message again if the `250` were lost).
   */
  inputEnded(now: number): Output[] {
    if (this.state === "closed" || this.inputDone) return [];
    this.inputDone = true;
    this.touch(now);
    if (!this.waiting && this.state !== "tls-handshake") this.drain();
    return this.flush();
  }

  tick(now: number): Output[] {
    if (this.state === "closed" || this.waiting || now < this.deadline) return [];
    if (this.inMessage) this.emit({ type: "message-abort" });
    this.send(reply(421, "4.4.2", `${this.config.hostname} Error: timeout exceeded`));
    this.close("timeout");
    return this.flush();
  }

  delivered(result: DeliveryResult, now: number): Output[] {
    if (this.state === "closed") return [];
    if (this.waitingFor("delivery") === undefined) {
      throw new Error(`delivered() called in state ${this.stateName}: the session was not waiting for a delivery`);
    }
    if (result.ok) this.facts.messages++;
    const transaction = this.transaction;
    this.answering = { stage: "DATA", from: transaction?.from, to: transaction?.recipients.join(",") };
    // Ready before the reply: a refusal that is the twentieth error closes the session for good.
    this.transaction = undefined;
    this.state = "ready";
    this.touch(now);
    if (result.reply !== undefined) {
      if (result.ok) this.send(result.reply);
      else this.error(result.reply);
    } else if (result.ok) {
      this.send(reply(250, "2.0.0", `Ok: queued as ${result.id}`));
    } else if (result.temporary) {
      this.send(reply(451, "4.3.0", `Error: ${result.reason}, try again later`));
    } else {
      this.send(reply(554, "5.3.0", `Error: ${result.reason}`));
    }
    return this.resume();
  }

  /** After an answer the session waited for: goodbye if shutting down, else the input that queued up meanwhile. */
  private resume(): Output[] {
    if (this.shuttingDown && !this.closed) this.sayGoodbye();
    else this.drain();
    return this.flush();
  }

  /**
   * The TLS handshake after STARTTLS ended. On success the session starts over, as RFC 3207
   * 4.2 requires: the client must say EHLO again and nothing it said before counts.
   */
  tlsStarted(ok: boolean, now: number): Output[] {
    if (this.state === "closed") return [];
    if (this.state !== "tls-handshake") throw new Error(`tlsStarted() called in state ${this.stateName}: no STARTTLS was under way`);
    if (!ok) {
      this.close("tls-failed");
      return this.flush();
    }
    this.facts.tls = true;
    this.facts.helo = undefined;
    // Forgotten with the rest (so HELO-SCHIZO compares only greetings inside TLS); a delayed
    // rejection stays: a DNSBL listing is not the client's word, and a bad HELO already showed it.
    this.facts.helos = [];
    this.facts.heloDns = undefined;
    this.facts.pipeliningOffered = false;
    this.protocol = "SMTP";
    this.state = "greeted";
    this.touch(now);
    if (this.shuttingDown) this.sayGoodbye();
    return this.flush();
  }

  /** The answer to `lookup-mail-domain`: MAIL is accepted or refused, then queued input is read. */
  resolved(answer: DnsAnswer, now: number): Output[] {
    if (this.state === "closed") return [];
    const waiting = this.waitingFor("dns");
    if (waiting === undefined) throw new Error(`resolved() called in state ${this.stateName}: the session was not waiting for DNS`);
    const pending = waiting.mail;
    this.state = "ready";
    this.touch(now);
    this.answering = { stage: "MAIL", from: pending.from, to: undefined };
    if (!this.runChecks("mail", { sender: pending.from, senderDomainAnswer: answer })) this.acceptMail(pending);
    return this.resume();
  }

  /** The store's greylist verdict for the pending RCPT: accepted, or deferred by the greylist check. */
  greylisted(verdict: "pass" | "defer", now: number): Output[] {
    if (this.state === "closed") return [];
    const waiting = this.waitingFor("greylist");
    if (waiting === undefined) throw new Error(`greylisted() called in state ${this.stateName}: the session was not waiting for the store`);
    const { transaction, recipient } = waiting;
    this.state = transaction.recipients.length > 0 ? "rcpt" : "mail";
    this.touch(now);
    this.answering = { stage: "RCPT", from: transaction.from, to: recipient.mailbox };
    if (!this.runChecks("triplet", { recipient: { mailbox: recipient.mailbox, known: true }, greylist: verdict })) {
      this.acceptRecipient(transaction, recipient);
    }
    return this.resume();
  }

  /** The HELO name's forward DNS, whenever the runner has it: a fact for the log and `explain`, never a refusal. */
  learnHeloDns(name: string, outcome: HeloDns): void {
    if (name === this.facts.helo) this.facts.heloDns = outcome;
  }

  /** The upstream's extensions, from its last EHLO reply: the next EHLO offers the client what it takes. */
  learnUpstreamExtensions(extensions: Extensions): void {
    if (this.config.relay) this.extensions = extensions;
  }

  /**
   * The session's first outputs: call once, right after construction. It asks for the client's
   * reverse DNS, so that no message begins before the answer (its `X-Mxscreen-FCrDNS:` header is
   * never written from a missing one).
   */
  start(): Output[] {
    if (this.reverse.kind === "unasked" && !this.client.allowed) {
      this.reverse = { kind: "asked" };
      this.emit({ type: "lookup-reverse" });
    }
    return this.flush();
  }

  /**
   * The answer to `lookup-reverse`: recorded and carried into spooled mail; a DATA or a RCPT
   * waiting for it goes on.
   */
  learnReverseDns(reverse: ReverseDns): Output[] {
    if (this.reverse.kind !== "asked") {
      throw new Error(`learnReverseDns() called with the reverse DNS ${this.reverse.kind}: it was not asked for`);
    }
    this.reverse = { kind: "known", answer: reverse };
    this.facts.fcrdns = reverse.status;
    const waiting = this.waitingFor("reverse-dns");
    if (waiting === undefined) return this.flush();
    const { transaction, then } = waiting;
    if (this.shuttingDown) {
      this.state = transaction.recipients.length > 0 ? "rcpt" : "mail";
      return this.resume();
    }
    if (then === "data") this.beginData(transaction, undefined);
    else if ("chunk" in then) this.beginData(transaction, then.chunk);
    else this.askGreylist(transaction, then.greylist);
    this.drain();
    return this.flush();
  }

  private get reverseDns(): ReverseDns | undefined {
    return this.reverse.kind === "known" ? this.reverse.answer : undefined;
  }

  /** The client went away: no reply is possible; abandon any message in progress. */
  clientClosed(): Output[] {
    if (this.state === "closed") return [];
    this.runChecks("end");
    if (this.inMessage) this.emit({ type: "message-abort" });
    this.state = "closed";
    this.facts.end ??= "client-closed";
    return this.flush();
  }

  /** Everything the client sent before its half-close is answered: a message it did not finish is dropped. */
  private hangUp(): void {
    this.runChecks("end");
    if (this.state === "closed") return;
    if (this.inMessage) this.emit({ type: "message-abort" });
    this.close("client-closed");
  }

  /** Finish politely: at once when idle, after the message in flight otherwise. */
  shutdown(): Output[] {
    this.shuttingDown = true;
    if (!this.inMessage && !this.waiting && this.state !== "closed") this.sayGoodbye();
    return this.flush();
  }

  /**
   * A ban made anywhere in the fleet covers this client: `text` (a 421) and close, at once, or
   * once the answer the session waits for is in (a message being delivered is answered first);
   * a message still being read is dropped, never delivered half.
   */
  banned(text: string): Output[] {
    if (this.state === "closed") return [];
    this.shuttingDown = true;
    this.bannedReply = text;
    if (!this.waiting && this.state !== "tls-handshake") this.sayGoodbye();
    return this.flush();
  }

  private sayGoodbye(): void {
    if (this.bannedReply !== undefined) {
      this.send(this.bannedReply);
      return this.close("banned");
    }
    this.send(reply(421, "4.3.2", `${this.config.hostname} Service shutting down, closing transmission channel`));
    this.close("shutdown");
  }

  /** Acts on the lines received while the session can; true when it took at least one. */
  private drain(): boolean {
    let took = false;
    while (this.state !== "closed" && !this.waiting && this.state !== "tls-handshake") {
      const chunk = this.chunk;
      if (chunk !== undefined) {
        if (this.readChunk(chunk)) took = true;
        if (this.chunk === chunk) {
          if (this.inputDone) this.hangUp();
          return took;
        }
        continue;
      }
      const line = this.reader.next();
      if (line === null) {
        if (this.inputDone) this.hangUp();
        else if (this.state !== "data") this.limitOverflow(this.reader.overflow);
        return took;
      }
      if (line.kind !== "overlong") {
        took = true;
        if (!line.crlf) this.facts.bareLineFeeds++;
      }
      if (this.state === "data") this.dataLine(line);
      else if (line.kind === "overlong") {
        this.error(reply(500, "5.5.2", `Error: line too long (limit ${this.config.maxLineLength} octets)`));
      } else if (line.kind === "line" && line.bytes.includes(CR)) {
        this.error(reply(500, "5.5.2", "Error: bare <CR> in a command; lines end in <CR><LF>"));
      } else if (line.kind === "line") this.command(decoder.decode(line.bytes), line.crlf);
      // Judged on the whole line too, so that the verdict does not depend on where its reads ended.
      else this.limitOverflow(line.length);
    }
    return took;
  }

  /**
   * A command line still streaming long after its 500: no client means that, so it is closed
   * rather than read on. Message content is only discarded: the data deadline bounds it.
   */
  private limitOverflow(bytes: number): void {
    if (bytes <= OVERFLOW_LIMITS * this.config.maxLineLength) return;
    this.facts.errors++;
    this.send(reply(421, "4.7.0", `${this.config.hostname} Error: command line far past the length limit; closing`));
    this.close("errors");
  }

  private command(line: string, crlf: boolean): void {
    const space = line.indexOf(" ");
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const arg = space < 0 ? "" : line.slice(space + 1).trim();
    // A BDAT command's chunk is part of it, not a command sent ahead of our reply.
    const ahead = bytesToText(this.reader.waiting(100, verb === "BDAT" ? bdatArgument(arg)?.size ?? 0 : 0));
    const command: ParsedCommand = {
      line: line.slice(0, 100),
      verb,
      arg,
      known: VERBS[verb] !== undefined,
      endsGroup: VERBS[verb]?.endsGroup ?? false,
      bareLineFeed: !crlf,
      followedByMore: ahead !== "",
      ahead,
      early: this.early,
    };
    this.early = undefined;
    this.paced = undefined;
    this.answered = { verb, endsGroup: command.endsGroup };
    this.answering = verb === "MAIL"
      ? { stage: "MAIL", from: pathText(arg), to: undefined }
      : verb === "RCPT" || verb === "DATA"
      ? { stage: verb, from: this.transaction?.from, to: verb === "RCPT" ? pathText(arg) : this.transaction?.recipients.join(",") }
      : undefined;
    const answered = this.runChecks("command", { command });
    this.facts.commands++;
    if (answered) return;
    this.facts.where = command.known ? verb : "UNIMPLEMENTED";
    const known = VERBS[verb];
    if (known === undefined) {
      this.facts.unknownCommands++;
      return this.error(reply(500, "5.5.2", "Error: command not recognized"));
    }
    Session.HANDLERS[known.handler](this, command);
  }

  /** What acts on each verb of the table (src/smtp/verbs.ts). */
  private static readonly HANDLERS: Readonly<Record<Handler, (session: Session, command: ParsedCommand) => void>> = {
    helo: (session, command) => session.helo(command.verb === "EHLO" ? "EHLO" : "HELO", command.arg, command),
    mail: (session, command) => session.mail(command.arg),
    rcpt: (session, command) => session.rcpt(command.arg, command),
    data: (session, command) => session.data(command.arg),
    bdat: (session, command) => session.bdat(command.arg),
    rset: (session, command) => session.rset(command.arg),
    noop: (session) => session.send(reply(250, "2.0.0", "Ok")),
    quit: (session) => {
      session.runChecks("end");
      session.send(reply(221, "2.0.0", "Bye"));
      session.close("quit");
    },
    vrfy: (session, command) => {
      if (command.arg === "") return session.error(reply(501, "5.5.4", "Syntax: VRFY address"));
      session.send(reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"));
    },
    help: (session) => session.send(HELP_REPLY),
    starttls: (session, command) => session.startTls(command.arg),
    refuse: (session, command) => session.error(reply(502, "5.5.1", `Error: ${command.verb} not implemented`)),
  };

  private rset(arg: string): void {
    if (arg !== "") return this.error(reply(501, "5.5.4", "Syntax: RSET"));
    this.dropTransaction();
    if (mailSinceReset(this.facts)) this.facts.transactionResets++;
    else this.facts.resets++;
    this.facts.transactionsAtReset = this.facts.transactions;
    if (this.state !== "greeted") this.state = "ready";
    this.send(reply(250, "2.0.0", "Ok"));
  }

  /** The reply `verb` gets where the session is, when the table says it may not come here. */
  private outOfSequence(verb: string): string | undefined {
    const state = this.state;
    return state === "greeted" || state === "ready" || state === "mail" || state === "rcpt" || state === "chunks"
      ? VERBS[verb].outOfSequence[state]
      : undefined;
  }

  private helo(verb: "HELO" | "EHLO", arg: string, command: ParsedCommand): void {
    if (arg === "" || /[\x00-\x1f\x7f ]/.test(arg)) return this.error(reply(501, "5.5.4", `Syntax: ${verb} hostname`));
    this.facts.helos.push(arg);
    if (verb === "EHLO" && refusesEhlo(this.config.checks, this.client)) {
      this.facts.ehloRefusedUnanswered = true;
      return this.error(EHLO_REFUSAL);
    }
    this.facts.ehloRefusedUnanswered = false;
    if (this.runChecks("helo", { command })) return;
    if (arg !== this.facts.helo && !arg.startsWith("[") && /[a-z]/i.test(arg) && !this.client.allowed) {
      this.facts.heloDns = undefined;
      this.emit({ type: "lookup-helo-name", name: arg });
    }
    this.facts.helo = arg;
    this.protocol = verb === "HELO" ? "SMTP" : this.facts.tls ? "ESMTPS" : "ESMTP";
    this.offered = UNKNOWN_UPSTREAM;
    this.dropTransaction();
    this.state = "ready";
    this.facts.pipeliningOffered = verb === "EHLO" && this.config.pipelining;
    const greeting = `${this.config.hostname} Hello ${arg} [${this.client.address}]`;
    if (verb === "HELO") return this.send(reply(250, null, greeting));
    this.offered = this.extensions;
    const keywords = [
      ...(this.config.pipelining ? ["PIPELINING"] : []),
      ...(this.config.tls && !this.facts.tls ? [VERBS.STARTTLS.ehlo!] : []),
      `SIZE ${this.config.maxMessageSize}`,
      "8BITMIME",
      ...ehloKeywords(this.offered),
      "ENHANCEDSTATUSCODES",
    ];
    this.send(reply(250, null, greeting, ...keywords));
  }

  private startTls(arg: string): void {
    if (!this.config.tls) return this.error(reply(502, "5.5.1", "Error: STARTTLS not implemented"));
    if (this.facts.tls) return this.error(reply(503, "5.5.1", "Error: TLS already active"));
    if (arg !== "") return this.error(reply(501, "5.5.4", "Syntax: STARTTLS"));
    const refusal = this.outOfSequence("STARTTLS");
    if (refusal !== undefined) return this.error(refusal);
    this.send(reply(220, "2.0.0", "Ready to start TLS"));
    // Whatever the client sent after STARTTLS in plaintext must never run inside the TLS session.
    this.facts.injectedBytes += this.reader.pending;
    this.reader = new LineReader(this.config.maxLineLength);
    this.transaction = undefined;
    this.state = "tls-handshake";
    this.emit({ type: "starttls" });
  }

  private mail(arg: string): void {
    const refusal = this.outOfSequence("MAIL");
    if (refusal !== undefined) return this.error(refusal);
    if (!/^FROM:/i.test(arg)) return this.error(reply(501, "5.5.4", "Syntax: MAIL FROM:<address>"));
    const path = parsePath(arg.slice(5));
    if (path === "syntax") return this.error(reply(501, "5.5.4", "Syntax: MAIL FROM:<address>"));
    if (path === "mailbox") return this.error(reply(501, "5.1.7", "Bad sender address syntax"));
    if (path.params.size > 0 && this.protocol === "SMTP") {
      return this.error(reply(555, "5.5.4", `Unsupported option: ${[...path.params.keys()][0]} (use EHLO for ESMTP options)`));
    }
    const parameters = mailParameters(path.params, this.offered);
    if (!parameters.ok) return this.error(parameters.reply);
    const { declaredSize, smtputf8 } = parameters;
    const unicode = unicodeRefusal(path.mailbox, smtputf8);
    if (unicode !== undefined) return this.error(unicode);
    if (declaredSize !== undefined && declaredSize > this.config.maxMessageSize) {
      return this.error(reply(552, "5.3.4", "Message size exceeds fixed limit"));
    }
    const transaction: Transaction = {
      from: path.mailbox,
      recipients: [],
      declaredSize,
      smtputf8,
      chunks: undefined,
      parameters: `${declaredSize === undefined ? "" : ` SIZE=${declaredSize}`}${parameters.forward}`,
      content: new MessageContent({ ...this.config, ownHosts: this.config.checks.ownHosts }, path.mailbox === ""),
    };
    const domain = domainOf(path.mailbox);
    if (path.mailbox === "" || domain.startsWith("[") || this.client.allowed || this.allowlisted) return this.acceptMail(transaction);
    this.state = { for: "dns", mail: transaction };
    this.emit({ type: "lookup-mail-domain", domain });
  }

  private acceptMail(transaction: Transaction): void {
    if (this.config.relay) return this.ask({ kind: "mail", transaction }, `MAIL FROM:<${transaction.from}>${transaction.parameters}`);
    this.transaction = transaction;
    this.state = "mail";
    this.facts.transactions++;
    this.send(reply(250, "2.1.0", "Ok"));
  }

  private rcpt(arg: string, command: ParsedCommand): void {
    const refusal = this.outOfSequence("RCPT");
    if (refusal !== undefined) return this.error(refusal);
    const transaction = this.transaction;
    if (transaction === undefined) throw new Error("RCPT in a transaction without one");
    if (!/^TO:/i.test(arg)) return this.error(reply(501, "5.5.4", "Syntax: RCPT TO:<address>"));
    const path = parsePath(arg.slice(3), ALWAYS_ACCEPTED);
    if (path === "syntax") return this.error(reply(501, "5.5.4", "Syntax: RCPT TO:<address>"));
    if (path === "mailbox" || path.mailbox === "") return this.error(reply(501, "5.1.3", "Bad recipient address syntax"));
    const parameters = rcptParameters(path.params, this.offered);
    if (!parameters.ok) return this.error(parameters.reply);
    const unicode = unicodeRefusal(path.mailbox, transaction.smtputf8);
    if (unicode !== undefined) return this.error(unicode);
    const recipient: Recipient = { mailbox: path.mailbox, parameters: parameters.forward };
    if (transaction.recipients.length >= this.config.maxRecipients) {
      return this.send(reply(452, "4.5.3", "Error: too many recipients"));
    }
    const bare = !path.mailbox.includes("@");
    const known = bare || this.acceptsDomain(domainOf(path.mailbox));
    if (this.runChecks("rcpt", { command, recipient: { mailbox: path.mailbox, known } })) return;
    if (!known) {
      this.countBadRecipient(path.mailbox);
      return this.error(reply(554, "5.7.1", `<${path.mailbox}>: Relay access denied`));
    }
    const localPart = bare ? path.mailbox : path.mailbox.slice(0, path.mailbox.lastIndexOf("@"));
    const alwaysAccepted = ALWAYS_ACCEPTED.includes(localPart.toLowerCase());
    if (this.delayedRejection !== undefined && !alwaysAccepted) {
      return this.error(this.delayedRejection.replace(/^(\d{3} \d\.\d\.\d )/, `$1<${path.mailbox}>: `));
    }
    if (!alwaysAccepted && !this.client.passed && !this.client.allowed && !this.allowlisted) {
      this.greylistDemanded = false;
      if (this.runChecks("recipient", { recipient: { mailbox: path.mailbox, known } })) return;
      if (this.config.checks.greylist || this.greylistDemanded) {
        // The triplet names the client's confirmed domain when it has one: never keyed on how fast DNS answered.
        if (this.reverse.kind === "asked") this.state = { for: "reverse-dns", transaction, then: { greylist: recipient } };
        else this.askGreylist(transaction, recipient);
        return;
      }
    }
    this.acceptRecipient(transaction, recipient);
  }

  private askGreylist(transaction: Transaction, recipient: Recipient): void {
    this.state = { for: "greylist", transaction, recipient };
    this.emit({
      type: "lookup-greylist",
      triplet: greylistTriplet(this.client.address, this.reverseDns, transaction.from, recipient.mailbox),
    });
  }

  private acceptRecipient(transaction: Transaction, recipient: Recipient): void {
    if (this.config.relay) {
      return this.ask({ kind: "rcpt", transaction, recipient }, `RCPT TO:<${recipient.mailbox}>${recipient.parameters}`);
    }
    transaction.recipients.push(recipient.mailbox);
    this.facts.recipients++;
    this.state = "rcpt";
    this.send(reply(250, "2.1.5", "Ok"));
  }

  private dropTransaction(): void {
    // Between BDAT chunks the message has begun: it is abandoned (at the upstream, by hanging up).
    this.emit({ type: "message-abort" });
    if (this.transaction !== undefined && this.config.relay) this.emit({ type: "upstream-reset" });
    this.transaction = undefined;
  }

  /** Asks the upstream and waits: real-time answers, never an acceptance it did not give. */
  private ask(question: UpstreamQuestion, command: string): void {
    this.state = { for: "upstream", question };
    this.emit({ type: "upstream", command });
  }

  /** The upstream's reply to the last `upstream` output, passed back to the client. */
  upstreamReplied(answer: UpstreamReply, now: number): Output[] {
    if (this.state === "closed") return [];
    const waiting = this.waitingFor("upstream");
    if (waiting === undefined) throw new Error(`upstreamReplied() called in state ${this.stateName}: nothing was asked`);
    const question = waiting.question;
    this.touch(now);
    this.answering = question.kind === "mail"
      ? { stage: "MAIL", from: question.transaction.from, to: undefined }
      : question.kind === "rcpt"
      ? { stage: "RCPT", from: question.transaction.from, to: question.recipient.mailbox }
      : { stage: "DATA", from: question.envelope.from, to: question.envelope.recipients.join(",") };
    const positive = answer.code >= 200 && answer.code < 400;
    switch (question.kind) {
      case "mail":
        if (positive) {
          this.transaction = question.transaction;
          this.state = "mail";
          this.facts.transactions++;
          this.send(answer.text);
        } else {
          this.state = "ready";
          this.error(answer.text);
        }
        break;
      case "rcpt":
        this.state = question.transaction.recipients.length > 0 ? "rcpt" : "mail";
        if (positive) {
          question.transaction.recipients.push(question.recipient.mailbox);
          this.facts.recipients++;
          this.state = "rcpt";
          this.send(answer.text);
        } else if (saysUnknownRecipient(answer.code, answer.text)) {
          // Unknown upstream is unknown here, a 4xx "No such user" too (seed 003): the dictionary
          // check and the fleet's counts take it as they take a domain not ours.
          if (this.runChecks("rcpt", { recipient: { mailbox: question.recipient.mailbox, known: false } })) return this.flush();
          this.countBadRecipient(question.recipient.mailbox);
          if (answer.code >= 500) this.error(answer.text);
          else this.send(answer.text);
        } else if (answer.code >= 500) {
          this.error(answer.text);
        } else {
          this.send(answer.text);
        }
        break;
      case "data":
        if (answer.code === 354) {
          this.emit({ type: "message-begin", envelope: question.envelope });
          // BDAT: the 354 is ours to hear; the client hears about its chunk once it is read.
          if (question.chunk !== undefined) {
            this.answering = undefined;
            this.readChunk(this.chunkOf(question.chunk, undefined));
            break;
          }
          this.state = "data";
          this.send(answer.text);
        } else if (question.chunk !== undefined) {
          this.state = "rcpt";
          this.answering = undefined;
          this.readChunk(this.chunkOf(question.chunk, answer.text));
        } else {
          this.state = "rcpt";
          this.error(answer.text);
        }
        break;
    }
    // Inside the message (after the upstream's 354) even a shutdown lets it finish first.
    if (!this.inMessage && !this.waiting) return this.resume();
    this.drain();
    return this.flush();
  }

  private acceptsDomain(domain: string): boolean {
    const domains = this.config.acceptDomains;
    return domains.length === 0 || domains.includes(domain);
  }

  private data(arg: string): void {
    if (arg !== "") return this.error(reply(501, "5.5.4", "Syntax: DATA"));
    const refusal = this.outOfSequence("DATA");
    if (refusal !== undefined) return this.error(refusal);
    const transaction = this.transaction;
    if (transaction === undefined) throw new Error("DATA in a transaction without one");
    if (this.reverse.kind === "asked") {
      this.state = { for: "reverse-dns", transaction, then: "data" };
      return;
    }
    this.beginData(transaction, undefined);
  }

  /**
   * BDAT size [LAST] (RFC 3030): the next `size` octets are message content, not commands. The
   * first chunk begins the message as DATA would (the upstream is asked DATA: chunks are sent
   * on as one DATA stream, dot-stuffed), each chunk is answered once read, and LAST ends it.
   * A chunk refused (out of sequence, or its DATA refused by the upstream) is still read to its end.
   */
  private bdat(arg: string): void {
    if (!this.offered.chunking) return this.error(reply(502, "5.5.1", "Error: BDAT not implemented"));
    const start = bdatArgument(arg);
    if (start === undefined) {
      // Where its chunk ends cannot be known: what follows would be read as commands.
      this.error(reply(501, "5.5.4", "Syntax: BDAT size [LAST]"));
      return this.close("errors");
    }
    // Where DATA may not come, a first chunk may not either.
    const refusal = this.state === "chunks" ? undefined : this.outOfSequence("DATA");
    if (refusal !== undefined) return void this.readChunk(this.chunkOf(start, refusal));
    const transaction = this.transaction;
    if (transaction === undefined) throw new Error("BDAT in a transaction without one");
    if (this.state === "chunks") return void this.readChunk(this.chunkOf(start, undefined));
    transaction.chunks = new ChunkLines(this.config.maxLineLength);
    if (this.reverse.kind === "asked") {
      this.state = { for: "reverse-dns", transaction, then: { chunk: start } };
      return;
    }
    this.beginData(transaction, start);
  }

  private chunkOf(start: ChunkStart, refusal: string | undefined): Chunk {
    return { at: "chunk", left: start.size, size: start.size, last: start.last, refusal };
  }

  /**
   * Reads what has come of the chunk at hand; once it is all here, answers it (or ends the
   * message, for LAST). True when at least one content line was completed (or the chunk).
   */
  private readChunk(chunk: Chunk): boolean {
    this.state = chunk;
    const transaction = this.transaction;
    let took = false;
    while (chunk.left > 0) {
      const bytes = this.reader.take(chunk.left);
      if (bytes.length === 0) return took;
      chunk.left -= bytes.length;
      if (chunk.refusal === undefined && transaction?.chunks?.push(bytes, (line) => this.dataLine(line, false))) took = true;
    }
    // Refused, or the message failed with this chunk (too large, a line too long): the transaction is over.
    const failure = chunk.refusal ?? (chunk.last ? undefined : transaction?.content.failure);
    if (failure !== undefined) {
      if (transaction?.chunks !== undefined) this.dropTransaction();
      const left = this.transaction;
      this.state = left !== undefined
        ? (left.recipients.length > 0 ? "rcpt" : "mail")
        : this.facts.helo === undefined
        ? "greeted"
        : "ready";
      this.error(failure);
      return true;
    }
    if (!chunk.last) {
      this.facts.chunks++;
      this.state = "chunks";
      this.send(reply(250, "2.0.0", `${chunk.size} octets received`));
      return true;
    }
    transaction!.chunks!.end((line) => this.dataLine(line, false));
    this.endOfData(transaction!);
    return true;
  }

  private beginData(transaction: Transaction, chunk: ChunkStart | undefined): void {
    const envelope: Envelope = {
      helo: this.facts.helo ?? "",
      protocol: this.protocol,
      from: transaction.from,
      recipients: [...transaction.recipients],
      declaredSize: transaction.declaredSize,
      reverseDns: this.reverseDns,
    };
    if (this.config.relay) return this.ask({ kind: "data", envelope, chunk }, "DATA");
    this.emit({ type: "message-begin", envelope });
    if (chunk !== undefined) return void this.readChunk(this.chunkOf(chunk, undefined));
    this.state = "data";
    this.send(reply(354, null, "End data with <CR><LF>.<CR><LF>"));
  }

  private dataLine(line: Line, stuffed = true): void {
    const transaction = this.transaction!;
    // A view of the reader's buffer: emit() copies it, with the others of this read, before returning.
    const step = transaction.content.take(line, (bytes) => this.emit({ type: "message-data", bytes }), stuffed);
    if (step === "end") this.endOfData(transaction);
    // What was begun is dropped; the rest is read and discarded, and the final dot gets the failure.
    else if (step === "failed") this.emit({ type: "message-abort" });
  }

  private endOfData(transaction: Transaction): void {
    this.answered = MESSAGE_END;
    this.answering = { stage: "DATA", from: transaction.from, to: transaction.recipients.join(",") };
    const failure = transaction.content.failure;
    if (failure !== undefined) {
      this.transaction = undefined;
      this.state = "ready";
      return this.error(failure);
    }
    const bounceNamesUs = transaction.from === "" ? transaction.content.bounce.namesUs : undefined;
    // The data is all read: a check's reply now answers the whole message.
    this.state = "ready";
    if (this.runChecks("data", { sender: transaction.from, bounceNamesUs })) {
      this.emit({ type: "message-abort" });
      this.transaction = undefined;
      return;
    }
    this.state = { for: "delivery" };
    this.emit({ type: "message-end" });
  }

  /**
   * Runs the checks of one stage and applies each hit's action centrally (postscreen's way):
   * ignore and observe only record it; enforce and ban apply the check's consequence.
   * Returns true when a hit answered the command or closed the connection.
   */
  private runChecks(stage: SessionStage, moment: Partial<Pick<CheckFacts, MomentFacts>> = {}): boolean {
    if (this.client.allowed || this.allowlisted) return false;
    const checks = checksAt(stage);
    if (checks.length === 0) return false;
    const facts: CheckFacts = {
      client: this.client,
      session: this.facts,
      dnsbl: this.gate.dnsbl,
      harvested: this.gate.harvested ?? [],
      reverseDns: this.reverseDns,
      command: moment.command,
      sender: moment.sender ?? this.transaction?.from,
      senderDomainAnswer: moment.senderDomainAnswer,
      recipient: moment.recipient,
      greylist: moment.greylist,
      bounceNamesUs: moment.bounceNamesUs,
      rates: this.gate.rates,
    };
    for (const check of checks) {
      const hit = check.evaluate(facts, this.config.checks);
      if (hit === undefined) continue;
      const action = effectiveAction(check, this.config.actions, this.config.observe);
      this.facts.findings.push({ check: check.id, tag: check.tag, action, consequence: check.consequence, evidence: hit.evidence });
      if (action === "ignore" || action === "observe") continue;
      switch (check.consequence) {
        case "record":
          continue;
        case "greylist":
          this.greylistDemanded = true;
          continue;
        case "delay":
          this.delayedRejection ??= hit.reply;
          continue;
        case "reject":
          // A 4xx is our own doubt (greylisting, DNS trouble), not the client's error: it must
          // not push a real MTA with many recipients over the hard error limit.
          if (hit.reply.startsWith("4")) this.send(hit.reply);
          else this.error(hit.reply);
          return true;
        case "close":
          if (this.inMessage) this.emit({ type: "message-abort" });
          this.send(hit.reply);
          this.close("check");
          return true;
      }
    }
    return false;
  }

  private countBadRecipient(mailbox: string): void {
    this.facts.badRecipients++;
    if (!mailbox.includes("@")) return;
    const domain = domainOf(mailbox).toLowerCase();
    const counted = this.facts.badRecipientDomains.find((entry) => entry[0] === domain);
    if (counted !== undefined) counted[1]++;
    else if (this.facts.badRecipientDomains.length < MAX_BAD_RECIPIENT_DOMAINS) this.facts.badRecipientDomains.push([domain, 1]);
  }

  private error(text: string): void {
    this.facts.errors++;
    this.send(text);
    if (this.facts.errors >= HARD_ERROR_LIMIT && this.state !== "closed") {
      this.send(reply(421, "4.7.0", `${this.config.hostname} Error: too many errors`));
      this.close("errors");
    }
  }

  /** Every reply leaves through here, so none breaks RFC 5321's reply rules whoever wrote it. */
  private send(raw: string): void {
    const text = boundedReply(raw);
    this.facts.lastReply = text;
    // The first reply answers the command: a later one (a timeout's 421) is not its refusal.
    const answering = this.answering;
    this.answering = undefined;
    if (answering !== undefined && (text[0] === "4" || text[0] === "5")) {
      this.push({ type: "refused", ...answering, reply: text.trimEnd() });
    }
    if (answering !== undefined && text[0] === "4") this.facts.tempfails++;
    this.push({ type: "reply", text });
  }

  /**
   * Message content is gathered and handed on as one chunk per input rather than one per line:
   * a large message then costs a few allocations per read, not hundreds of thousands.
   */
  private emit(output: Output): void {
    if (output.type === "message-data") {
      this.dataParts.push(output.bytes);
      return;
    }
    if (output.type === "message-abort") {
      if (!this.messageOpen) return;
      this.dataParts = [];
    }
    if (output.type === "message-begin") this.messageOpen = true;
    if (output.type === "message-abort" || output.type === "message-end") this.messageOpen = false;
    this.push(output);
  }

  private push(output: Output): void {
    this.flushData();
    this.out.push(output);
  }

  private flushData(): void {
    if (this.dataParts.length === 0) return;
    const bytes = concatBytes(this.dataParts);
    this.dataParts = [];
    this.out.push({ type: "message-data", bytes });
  }

  private close(reason: EndReason): void {
    // Whatever closes the session (the twentieth error, a check, a timeout), a message begun is dropped first.
    this.emit({ type: "message-abort" });
    this.facts.end ??= reason;
    this.state = "closed";
    this.push({ type: "close" });
  }

  /** The wait the session is in, when it is this one. */
  private waitingFor<F extends Waiting["for"]>(what: F): Extract<Waiting, { for: F }> | undefined {
    const state = this.state;
    return typeof state === "object" && "for" in state && state.for === what ? state as Extract<Waiting, { for: F }> : undefined;
  }

  /** The state as a word, for errors that report a broken invariant. */
  private get stateName(): string {
    const state = this.state;
    return typeof state === "object" ? ("for" in state ? `waiting for ${state.for}` : "reading a BDAT chunk") : state;
  }

  /**
   * The last reply of this input, when the session reads commands next, may be paced: split
   * before its final line, written after a pause. Stutter, for clients not yet passed: a client
   * must read the whole reply before it sends what RFC 2920 does not let it pipeline. Tarpit,
   * for clients with hits: each one makes every reply slower.
   */
  private pace(): void {
    const last = this.out[this.out.length - 1];
    const answered = this.answered;
    const state = this.state;
    if (
      last?.type !== "reply" || answered === undefined ||
      !(state === "greeted" || state === "ready" || state === "mail" || state === "rcpt")
    ) return;
    if (this.client.allowed || this.allowlisted) return;
    const checks = this.config.checks;
    const stutterMs = checks.stutter && !this.client.passed && stutters(answered.verb, last.text) ? checks.stutterDelayMs : 0;
    const tarpitMs = tarpitDelayMs(tarpitHits(this.facts.findings) + (this.gate.tarpitHits ?? 0), this.config.tarpit);
    if (stutterMs === 0 && tarpitMs === 0) return;
    this.out[this.out.length - 1] = {
      type: "paced-reply",
      ...splitReply(last.text, this.config.hostname, stutterMs > 0),
      stutterMs,
      tarpitMs,
    };
    this.paced = answered;
    this.facts.pacedReplies++;
  }

  private touch(now: number): void {
    this.lastActivity = now;
  }

  private flush(): Output[] {
    this.flushData();
    this.pace();
    const out = this.out;
    this.out = [];
    return out;
  }
}
