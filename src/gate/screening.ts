import type { Metrics } from "../metrics/metrics.ts";
import type { ClientSocket, ConnectionHandlers } from "../net/types.ts";
import type { GateFacts, SessionFacts } from "../smtp/types.ts";
import type { GreylistStore } from "../greylist/index.ts";
import type { SessionHandle, SessionPool, SessionSink } from "../../workers/types.ts";
import type { Logger } from "../log/logger.ts";
import { clientLabel, type Concluder, type ConnectionRecord, sessionFindings } from "./conclude.ts";
import type { Deadlines } from "./deadlines.ts";
import type { DnsblPending } from "../dnsbl/index.ts";
import { Greeter } from "./greeter.ts";
import { PacedWriter } from "./paced-writer.ts";
import type { TarpitBudget } from "./tarpit-budget.ts";
import type { Finding, GateAction, GateConfig } from "./types.ts";
import type { Standing } from "../store/types.ts";

/** What every connection's screening shares, from the accept loop. */
export interface ScreeningContext {
  readonly gate: GateConfig;
  readonly pool: SessionPool;
  readonly concluder: Concluder;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly deadlines: Deadlines;
  readonly greylist: GreylistStore | undefined;
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
export class Screening implements ConnectionHandlers {
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
  private readonly expire = () => this.run(this.greeter.tick(Date.now()));

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

  data(bytes: Uint8Array): void {
    if (this.session) this.session.data(bytes, this.writer!.holding);
    else this.run(this.greeter.receive(bytes, Date.now()));
  }

  /** The client shut down its sending side: a session answers what it sent; in the greet wait, it left. */
  end(): void {
    if (this.session) return this.session.ended();
    if (this.concluded) return;
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
    if (this.due !== undefined) this.context.deadlines.cancel(this.due, this.expire);
    if (this.session) return this.session.gone();
    const finding = this.greeter.hangup(Date.now());
    if (finding && !this.concluded) this.conclude(finding);
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
      this.context.deadlines.add(this.due, this.expire);
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
      passed: this.standing.kind === "passed",
      allowed: this.standing.kind === "allowed",
    };
    const writer = this.writer = new PacedWriter(socket);
    // The session is over: its place in the tarpit is free, and the connection ends after what it wrote.
    const end = () => {
      context.tarpit.release(this);
      writer.then(() => socket.end());
    };
    const sink: SessionSink = {
      write: (text, pace) => writer.write(text, pace && { ms: pace.stutterMs + context.tarpit.grant(this, pace.tarpitMs), final: pace.final }),
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
          this.conclude({ event: "LOCAL-ERROR", check: "session", action: "close", evidence: { reason: "a bug of ours (see the BUG line)" } });
          return end();
        }
        const gateFindings = [
          ...(this.greeter.noted ? [this.greeter.noted] : []),
          ...(this.standing.kind === "allowed" ? [] : context.acrossConnections(record, facts)),
        ];
        const [finding, ...also] = sessionFindings(this.standing, gateFindings, facts);
        this.conclude(finding, also);
        end();
      },
      failed: (reason) => {
        writer.write(`421 4.3.0 ${context.gate.hostname} Error: local error in processing, try again later\r\n`);
        end();
        this.conclude({ event: "WORKER-FAILED", check: "session-worker", action: "close", evidence: { reason } });
      },
    };
    const harvested = this.standing.kind === "new" ? context.harvested() : undefined;
    this.session = context.pool.open(client, { dnsbl: this.dnsbl?.answers() ?? [], stress: context.stressed(), ...(harvested?.length && { harvested, tarpitHits: 1 }) }, early, sink);
    if (this.inputEnded) this.session.ended();
  }
}
