import type { IP } from "../ip/address.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { ClientSocket, ConnectionHandlers } from "../net/types.ts";
import type { GateFacts, SessionFacts } from "../smtp/types.ts";
import type { GreylistStore } from "../greylist/index.ts";
import type { ClientRates } from "./client-rates.ts";
import type { SessionHandle, SessionPool, SessionSink } from "../../workers/types.ts";
import type { Logger } from "../log/logger.ts";
import { clientLabel, type Concluder, type ConnectionRecord, sessionFindings } from "./conclude.ts";
import type { Deadlines, Expiring } from "./deadlines.ts";
import type { DnsblPending } from "../dnsbl/index.ts";
import { bannedFinding, bannedLiveReply, Greeter } from "./greeter.ts";
import { concatBytes } from "../smtp/bytes.ts";
import { PacedWriter } from "./paced-writer.ts";
import type { TarpitBudget } from "./tarpit-budget.ts";
import type { Finding, GateAction, GateConfig } from "./types.ts";
import type { ListEntry, Standing } from "../store/types.ts";

/** What every connection's screening shares, from the accept loop. */
export interface ScreeningContext {
  readonly gate: GateConfig;
  readonly pool: SessionPool;
  readonly concluder: Concluder;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly deadlines: Deadlines;
  readonly greylist: GreylistStore | undefined;
  readonly rates: ClientRates;
  /** A passed client looked up in the DNSBLs again was clean: its DNSBL verdict holds for another MXSCREEN_DNSBL_TTL. */
  dnsblRenewed(ip: IP): void;
  /** The checks across connections and nodes (dictionary, harvest), for a session that ended. */
  acrossConnections(record: ConnectionRecord, facts: SessionFacts): Finding[];
  /** The recipient domains under harvest now, for a new client's session. */
  harvested(): GateFacts["harvested"];
  readonly tarpit: TarpitBudget;
  /** The process is under stress: sessions begun now get the shorter deadlines. */
  stressed(): boolean;
  /** The connection is gone: stop tracking it (and release its count when it was counted). */
  ended(screening: Screening): void;
}

/**
 * One connection's life in the gate: the greeting, the greet wait and the hand-off of a clean
 * client to the session pool. One object per connection with its methods on the prototype:
 * tens of thousands are held at once, and closures per connection cost memory.
 */
export class Screening implements ConnectionHandlers, Expiring {
  private readonly greeter: Greeter;
  private session: SessionHandle | undefined;
  /** The session's writes, with the pauses of its paced replies; made at hand-off. */
  private writer: PacedWriter | undefined;
  /** The greet wait's end, once it is on the clock. */
  private due: number | undefined;
  private concluded = false;
  private gone = false;
  /** The client half-closed while still in the greet wait, after talking (pregreet only logged). */
  private inputEnded = false;
  /** Recorded on the pass list when it waited out the greeting, before its session. */
  private passRecorded = false;
  /** The ban made while the connection was open that ended it. */
  private bannedBy: ListEntry | undefined;
  /** What a passed client sent while its greeting waits for its DNSBL answers; then, joined, its session's first input. */
  private held: Uint8Array[] | undefined;
  private heldEarly: Uint8Array | undefined;
  /** Its DNSBL verdict was looked up again: a clean session renews it. */
  private dnsblRechecked = false;

  constructor(
    private readonly context: ScreeningContext,
    private readonly socket: ClientSocket,
    readonly record: ConnectionRecord,
    private standing: Standing,
    /** Counted against the connection limits (released when it ends). */
    readonly counted: boolean,
    private readonly dnsbl: DnsblPending | undefined,
  ) {
    this.greeter = new Greeter(context.gate);
  }

  /**
   * Greets the client, or refuses it. `named`: the MXSCREEN_ALLOW `.domain` entry its reverse
   * name falls under, when one is being looked up: it wins over a ban, and ends a greet wait.
   */
  start(named: Promise<string | undefined> | undefined, stressed: boolean, now: number): void {
    if (this.standing.kind === "passed" && this.dnsbl !== undefined) return this.recheckDnsbl(this.dnsbl, stressed);
    if (named && this.standing.kind === "banned") {
      // An allow entry wins over any ban, so the refusal waits for the name.
      void named.then((source) => {
        if (this.gone) return;
        if (source !== undefined) this.standing = { kind: "allowed", source };
        this.run(this.greeter.open(this.standing, Date.now(), stressed));
      });
      return;
    }
    this.run(this.greeter.open(this.standing, now, stressed));
    void named?.then((source) => {
      if (source === undefined || this.gone || this.session !== undefined || this.concluded) return;
      this.standing = { kind: "allowed", source };
      this.run(this.greeter.release());
    });
  }

  /**
   * A passed client whose DNSBL verdict has expired (MXSCREEN_DNSBL_TTL): its greeting waits for
   * the zones' answers, at most a greet wait, so that its session is judged on them. It passed
   * the greet test, so it is not read meanwhile (TCP holds what it sends), and what was already
   * on its way is kept for its session, not held against it.
   */
  private recheckDnsbl(dnsbl: DnsblPending, stressed: boolean): void {
    this.held = [];
    this.dnsblRechecked = true;
    this.socket.pause();
    const waitMs = stressed ? this.context.gate.greetWaitStressMs : this.context.gate.greetWaitMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = new Promise<void>((resolve) => timer = setTimeout(resolve, waitMs));
    void Promise.race([dnsbl.settled, waited]).then(() => {
      clearTimeout(timer);
      if (this.gone || this.concluded) return;
      // A ban that came meanwhile refuses it as at connect.
      const standing: Standing = this.bannedBy ? { kind: "banned", entry: this.bannedBy } : this.standing;
      this.heldEarly = this.held && this.held.length > 0 ? concatBytes(this.held) : undefined;
      this.held = undefined;
      this.socket.resume();
      this.run(this.greeter.open(standing, Date.now(), stressed));
    });
  }

  data(bytes: Uint8Array): void {
    if (this.held) this.held.push(bytes.slice());
    else if (this.session) this.session.data(bytes, this.writer!.finalsWritten);
    else this.run(this.greeter.receive(bytes, Date.now()));
  }

  /** The client shut down its sending side: a session answers what it sent; in the greet wait, it left. */
  end(): void {
    if (this.session) return this.session.ended();
    if (this.concluded) return;
    if (this.held) {
      this.inputEnded = true;
      return;
    }
    if (this.greeter.talked) {
      this.inputEnded = true;
      return;
    }
    const finding = this.greeter.hangup(Date.now());
    this.socket.end();
    if (finding) this.conclude(finding);
  }

  close(): void {
    this.gone = true;
    this.writer?.cancel();
    this.context.tarpit.release(this);
    this.context.ended(this);
    if (this.due !== undefined) this.context.deadlines.cancel(this.due, this);
    if (this.session) return this.session.gone();
    if (this.held && !this.concluded) {
      return this.conclude({
        event: "HANGUP",
        check: "greet-wait",
        action: "none",
        evidence: { after_ms: Date.now() - this.record.openedAt },
      });
    }
    const finding = this.greeter.hangup(Date.now());
    if (finding && !this.concluded) this.conclude(finding);
  }

  /**
   * A ban made while the connection is open covers the client (the caller checked the lists):
   * a client in the greet wait is refused now, a session says `421 4.7.1` and closes.
   */
  banned(entry: ListEntry): void {
    // Allowed by its reverse name since the lists were read: an allow entry always wins.
    if (this.concluded || this.gone || this.bannedBy !== undefined || this.standing.kind === "allowed") return;
    this.bannedBy = entry;
    if (this.held) return;
    if (this.session) this.session.banned(bannedLiveReply(this.context.gate.hostname));
    else this.run(this.greeter.banned(entry));
  }

  /** The greet wait's deadline passed (Deadlines calls it). */
  expire(): void {
    this.run(this.greeter.tick(Date.now()));
  }

  /** Our own shutdown: a client still in the greet wait is told to come back; sessions are the pool's to end. */
  shutdown(): void {
    if (this.session || this.concluded) return;
    this.socket.write(`421 4.3.2 ${this.context.gate.hostname} Service shutting down, try again later\r\n`);
    this.socket.end();
    this.conclude({ event: "SHUTDOWN", check: "none", action: "close", evidence: {} });
  }

  private conclude(finding: Finding, also?: readonly Finding[]): void {
    this.concluded = true;
    this.context.concluder.conclude(this.record, finding, Date.now(), also, this.passRecorded);
  }

  private run(actions: GateAction[]): void {
    for (const action of actions) {
      switch (action.type) {
        case "write":
          this.socket.write(action.text);
          break;
        case "close":
          this.socket.end();
          break;
        case "drop":
          this.socket.destroy();
          break;
        case "conclude":
          this.conclude(action.finding);
          break;
        case "handoff":
          this.handoff(action.early);
          break;
      }
    }
    if (this.due === undefined && this.greeter.deadline !== Infinity) {
      this.due = this.greeter.deadline;
      this.context.deadlines.add(this.due, this);
    }
  }

  private handoff(early: Uint8Array | undefined): void {
    const { socket, record, context } = this;
    // A sender pool opens its next connections seconds after the first: they must not wait again.
    if (this.standing.kind === "new") {
      context.concluder.admit(record, Date.now());
      this.passRecorded = true;
    }
    const client = {
      address: record.address,
      port: record.port,
      local: record.local,
      // The tests meant for clients never seen before (EHLO refusal, greylisting) are skipped
      // while the deep protocol tests' pass holds, also when the greet test had to be passed again.
      passed: this.standing.kind === "passed" || (this.standing.kind === "new" && this.standing.protocolPass !== undefined),
      allowed: this.standing.kind === "allowed",
    };
    const writer = this.writer = new PacedWriter(socket);
    // The session is over: its place in the tarpit is free, and the connection ends after what it wrote.
    const end = () => {
      context.tarpit.release(this);
      writer.then(() => socket.end());
    };
    const sink: SessionSink = {
      write: (text, pace) =>
        writer.write(text, pace && { ms: pace.stutterMs + context.tarpit.grant(this, pace.tarpitMs), final: pace.final }),
      close: end,
      pause: () => socket.pause(),
      resume: () => socket.resume(),
      starttls: (text) => {
        writer.write(text);
        writer.then(() =>
          socket.startTls((ok, error) => {
            if (!ok) context.logger.log({ event: "TLS-HANDSHAKE", client: clientLabel(record), reason: error, action: "close" });
            this.session!.tlsStarted(ok);
          })
        );
      },
      log: ({ event, ...rest }) => {
        if (event === "DELIVERED" || event === "DELIVERY-FAILED") {
          context.metrics.inc("mxscreen_messages_total", { result: event === "DELIVERED" ? "delivered" : "failed" });
        }
        context.logger.log({ event, client: clientLabel(record), ...rest });
      },
      greylist: (triplet) => Promise.resolve(context.greylist?.consult(triplet, Date.now()) ?? "pass"),
      end: (facts) => {
        if (facts === undefined) {
          this.conclude({
            event: "LOCAL-ERROR",
            check: "session",
            action: "close",
            evidence: { reason: "a bug of ours (see the BUG line)" },
          });
          return end();
        }
        const gateFindings = [
          ...(this.bannedBy && facts.end === "banned" ? [bannedFinding(this.bannedBy, "close", "session")] : []),
          ...(this.greeter.noted ? [this.greeter.noted] : []),
          ...(this.standing.kind === "allowed" ? [] : context.acrossConnections(record, facts)),
        ];
        if (this.standing.kind !== "allowed") context.rates.ended(record.ip, facts, Date.now());
        const [finding, ...also] = sessionFindings(this.standing, gateFindings, facts);
        this.conclude(finding, also);
        if (this.dnsblRechecked && finding.event === "PASS OLD") context.dnsblRenewed(record.ip);
        end();
      },
      failed: (reason) => {
        writer.write(`421 4.3.0 ${context.gate.hostname} Error: local error in processing, try again later\r\n`);
        end();
        this.conclude({ event: "WORKER-FAILED", check: "session-worker", action: "close", evidence: { reason } });
      },
    };
    const harvested = this.standing.kind === "new" ? context.harvested() : undefined;
    const rates = this.standing.kind === "allowed" ? undefined : context.rates.session(record.ip, Date.now());
    const gate: GateFacts = {
      dnsbl: this.dnsbl?.answers() ?? [],
      stress: context.stressed(),
      ...(harvested?.length && { harvested, tarpitHits: 1 }),
      ...(rates && { rates }),
    };
    this.session = context.pool.open(client, gate, early ?? this.heldEarly, sink);
    if (this.inputEnded) this.session.ended();
  }
}
