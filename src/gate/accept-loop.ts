import type { CheckAction } from "../checks/types.ts";
import { contains, formatIP, type IP, type Prefix, parseIP } from "../ip/address.ts";
import type { Logger } from "../log/logger.ts";
import { listen } from "../net/listen.ts";
import type { ClientSocket, ConnectionHandlers, Listener } from "../net/types.ts";
import type { SessionFacts } from "../smtp/types.ts";
import type { GreylistStore } from "../store/greylist.ts";
import type { Store } from "../store/store.ts";
import type { SessionHandle, SessionPool } from "../../workers/types.ts";
import { BadRecipientWindow, type BadRecipientWindowConfig } from "./bad-recipient-window.ts";
import { clientLabel, type Concluder, type ConnectionRecord, sessionFindings } from "./conclude.ts";
import { ConnectionLimits, type ConnectionLimitsConfig, type LimitBreach } from "./connection-limits.ts";
import type { DnsblLookups } from "./dnsbl-lookups.ts";
import { Greeter } from "./greeter.ts";
import type { Finding, GateAction, GateConfig, Standing } from "./types.ts";

export interface AcceptLoopOptions {
  /** Undefined when MXSCREEN_DNSBL is not set. */
  readonly dnsbl: DnsblLookups | undefined;
  readonly gate: GateConfig;
  readonly listen: readonly { host: string; port: number }[];
  readonly allow: readonly Prefix[];
  readonly maxConnections: number;
  readonly limits: ConnectionLimitsConfig;
  readonly connectionLimitAction: CheckAction;
  readonly badRecipientWindow: BadRecipientWindowConfig;
  /** MXSCREEN_ACTION_DICTIONARY, for the count across connections. */
  readonly dictionaryAction: CheckAction;
  /** Undefined when MXSCREEN_GREYLIST is off. */
  readonly greylist: GreylistStore | undefined;
}

/**
 * The main thread's part of every connection: look the client up, greet it (or refuse it),
 * run the greet wait, and hand clean clients to the session pool. It owns every socket.
 */
export class AcceptLoop {
  private readonly listeners: Listener[] = [];
  private readonly limits: ConnectionLimits;
  private readonly badRecipients: BadRecipientWindow;
  private readonly open = new Set<{ shutdown(): void }>();
  private stopping = false;

  constructor(
    private readonly options: AcceptLoopOptions,
    private readonly store: Store,
    private readonly pool: SessionPool,
    private readonly concluder: Concluder,
    private readonly logger: Logger,
  ) {
    this.limits = new ConnectionLimits(options.limits);
    this.badRecipients = new BadRecipientWindow(options.badRecipientWindow);
  }

  async start(): Promise<Listener[]> {
    for (const address of this.options.listen) {
      const listener = await listen({
        host: address.host,
        port: address.port,
        maxConnections: this.options.maxConnections,
        onConnection: (socket) => this.accept(socket),
      }).catch((error) => {
        throw new Error(`cannot listen on ${address.host}:${address.port}: ${(error as Error).message}`, { cause: error });
      });
      this.listeners.push(listener);
    }
    return this.listeners;
  }

  get connections(): number {
    return this.open.size;
  }

  /** Stops accepting and says goodbye to clients still in the greet wait; sessions are the pool's to finish. */
  stop(): void {
    this.stopping = true;
    for (const listener of this.listeners) listener.close();
    for (const connection of [...this.open]) connection.shutdown();
  }

  private standing(ip: IP, now: number): Standing {
    const configured = this.options.allow.find((prefix) => contains(prefix, ip));
    if (configured) return { kind: "allowed", source: `MXSCREEN_ALLOW ${formatIP(configured.ip)}/${configured.length}` };
    const lists = this.store.lookup(ip, now);
    if (lists.allow) return { kind: "allowed", source: lists.allow.prefix };
    if (lists.ban) return { kind: "banned", entry: lists.ban };
    if (lists.pass) return { kind: "passed", entry: lists.pass };
    return { kind: "new" };
  }

  /**
   * A connection over a limit: `421` and close (enforce, ban), or let in and only logged
   * (ignore, observe; it is then not counted). Returns the handlers of a refused connection.
   */
  private refuseOverLimit(socket: ClientSocket, record: ConnectionRecord, breach: LimitBreach): ConnectionHandlers | undefined {
    const gate = this.options.gate;
    const action = gate.observe ? "observe" : this.options.connectionLimitAction;
    const finding = { event: "LIMIT", check: "connection-limit", action, evidence: { limit: breach.limit, key: breach.key, connections: breach.count } };
    if (action === "ignore" || action === "observe") {
      this.logger.log({ event: "LIMIT", client: clientLabel(record), ...finding.evidence, action });
      return undefined;
    }
    socket.write(breach.limit === "total"
      ? `421 4.3.2 ${gate.hostname} All server ports are busy, try again later\r\n`
      : `421 4.7.0 ${gate.hostname} Error: too many connections from ${record.address}\r\n`);
    socket.end();
    this.concluder.conclude(record, finding, Date.now());
    return { data: () => {}, close: () => {} };
  }

  /** The dictionary check across connections: this session's unknown recipients added to its network's recent ones. */
  private dictionaryAcrossConnections(record: ConnectionRecord, facts: SessionFacts): Finding[] {
    if (facts.badRecipients === 0 || facts.findings.some((hit) => hit.check === "dictionary")) return [];
    const window = this.badRecipients.add(record.ip, facts.badRecipients, Date.now());
    if (!window.over) return [];
    const action = this.options.gate.observe ? "observe" : this.options.dictionaryAction;
    return [{ event: "DICTIONARY", check: "dictionary", action, evidence: { prefix: window.prefix, prefix_bad_recipients: window.count } }];
  }

  private accept(socket: ClientSocket): ConnectionHandlers {
    const now = Date.now();
    const ip = parseIP(socket.remoteAddress);
    if (ip === null || this.stopping) {
      socket.destroy();
      return { data: () => {}, close: () => {} };
    }
    const record: ConnectionRecord = { ip, address: formatIP(ip), port: socket.remotePort, openedAt: now };
    const standing = this.standing(ip, now);
    const breach = standing.kind === "allowed" ? undefined : this.limits.admit(ip);
    if (breach !== undefined) {
      const refused = this.refuseOverLimit(socket, record, breach);
      if (refused) return refused;
    }
    const counted = standing.kind !== "allowed" && breach === undefined;
    const greeter = new Greeter(this.options.gate);
    // Only clients that will wait out the greeting are looked up: a passed client never waits on DNS.
    const dnsbl = standing.kind === "new" ? this.options.dnsbl?.start(ip, now) : undefined;
    let session: SessionHandle | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let concluded = false;

    const tracked = {
      shutdown: () => {
        if (session || concluded) return;
        concluded = true;
        socket.write(`421 4.3.2 ${this.options.gate.hostname} Service shutting down, try again later\r\n`);
        socket.end();
        this.concluder.conclude(record, { event: "SHUTDOWN", check: "greet-wait", action: "close", evidence: {} }, Date.now());
      },
    };
    this.open.add(tracked);

    const run = (actions: GateAction[]) => {
      for (const action of actions) {
        switch (action.type) {
          case "write":
            socket.write(action.text);
            break;
          case "close":
            socket.end();
            break;
          case "drop":
            socket.destroy();
            break;
          case "conclude":
            concluded = true;
            this.concluder.conclude(record, action.finding, Date.now());
            break;
          case "handoff":
            const client = { address: record.address, port: record.port, passed: standing.kind === "passed", allowed: standing.kind === "allowed" };
            session = this.pool.open(client, { dnsbl: dnsbl?.answers() ?? [] }, action.early, {
              write: (text) => socket.write(text),
              close: () => socket.end(),
              log: ({ event, ...rest }) => this.logger.log({ event, client: clientLabel(record), ...rest }),
              greylist: (triplet) => this.options.greylist?.consult(triplet, Date.now()) ?? Promise.resolve("pass"),
              end: (facts) => {
                concluded = true;
                const gateFindings = [...(greeter.noted ? [greeter.noted] : []), ...(standing.kind === "allowed" ? [] : this.dictionaryAcrossConnections(record, facts))];
                const [finding, ...also] = sessionFindings(standing, gateFindings, facts);
                this.concluder.conclude(record, finding, Date.now(), also);
                socket.end();
              },
            });
            break;
        }
      }
      if (timer === undefined && greeter.deadline !== Infinity) {
        timer = setTimeout(() => run(greeter.tick(Date.now())), Math.max(0, greeter.deadline - Date.now()));
      }
    };

    run(greeter.open(standing, now));
    return {
      data: (bytes) => {
        if (session) session.data(bytes);
        else run(greeter.receive(bytes, Date.now()));
      },
      close: () => {
        this.open.delete(tracked);
        if (counted) this.limits.release(ip);
        if (timer !== undefined) clearTimeout(timer);
        if (session) return session.gone();
        const finding = greeter.hangup(Date.now());
        if (finding && !concluded) {
          concluded = true;
          this.concluder.conclude(record, finding, Date.now());
        }
      },
    };
  }
}
