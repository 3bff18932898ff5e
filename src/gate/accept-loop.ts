import type { Metrics } from "../metrics/metrics.ts";
import { connectionLimit } from "../checks/connection-limit.ts";
import { connRate } from "../checks/conn-rate.ts";
import { effectiveAction } from "../checks/registry.ts";
import type { AcceptFacts } from "../checks/types.ts";
import { contains, formatIP, formatPrefix, type IP, parseIP, type Prefix } from "../ip/address.ts";
import type { Logger } from "../log/logger.ts";
import { listen } from "../net/runtime/listen.ts";
import type { ClientSocket, ConnectionHandlers, Listener, TlsCredentials } from "../net/types.ts";
import type { SessionFacts } from "../smtp/types.ts";
import type { GreylistStore } from "../greylist/index.ts";
import type { Store } from "../store/store.ts";
import type { SessionPool } from "../../workers/types.ts";
import { type BadRecipientCounters, BadRecipientWindow, type BadRecipientWindowConfig, dictionary } from "../dictionary/index.ts";
import type { ClientRates } from "./client-rates.ts";
import { harvest, type HarvestTry, type HarvestWindow } from "../harvest/index.ts";
import { clientLabel, type Concluder, type ConnectionRecord } from "./conclude.ts";
import { ConnectionLimits, type ConnectionLimitsConfig } from "./connection-limits.ts";
import { type DnsblLookups, DnsblVerdicts } from "../dnsbl/index.ts";
import { Deadlines } from "./deadlines.ts";
import { parseProxyHeader } from "../net/proxy-protocol.ts";
import { type PassTtls, standing as standingOf } from "../store/standing.ts";
import { Screening, type ScreeningContext } from "./screening.ts";
import { LiveSessions } from "./live-sessions.ts";
import { Stress } from "./stress.ts";
import { TarpitBudget } from "./tarpit-budget.ts";
import type { Finding, GateConfig } from "./types.ts";

export interface AcceptLoopOptions {
  /** Undefined when MXSCREEN_DNSBL is not set. */
  readonly dnsbl: DnsblLookups | undefined;
  readonly gate: GateConfig;
  readonly listen: readonly { host: string; port: number }[];
  readonly allow: readonly Prefix[];
  /**
   * The MXSCREEN_ALLOW `.domain` entry a client's forward-confirmed reverse name falls under;
   * undefined when there are no such entries.
   */
  readonly allowByName: ((ip: IP) => Promise<string | undefined>) | undefined;
  /** Peers that must send a PROXY header naming the real client (load balancers). */
  readonly trustedProxies: readonly Prefix[];
  /** Open connections past which the runtime's listener stops accepting (below the open-files limit). */
  readonly listenerCap: number;
  /** This process's open-files limit. */
  readonly openFiles: number;
  /** Several processes listen on the same port (MXSCREEN_PROCESSES > 1). */
  readonly reusePort: boolean;
  /** MXSCREEN_STRESS_CONNECTIONS. */
  readonly stressConnections: number;
  readonly tls: (() => TlsCredentials | undefined) | undefined;
  readonly limits: ConnectionLimitsConfig;
  readonly badRecipientWindow: BadRecipientWindowConfig;
  /** The fleet's counts of unknown recipients per network and per domain, over that window. */
  readonly badRecipientCounters: BadRecipientCounters;
  /** Undefined when neither MXSCREEN_GREYLIST nor the harvest check greylists. */
  readonly greylist: GreylistStore | undefined;
  /** Connection, message and recipient rates per client and network, fleet-wide. */
  readonly rates: ClientRates;
  /** How long a pass holds for the greet test and for the deep protocol tests. */
  readonly passTtls: PassTtls;
  /** Domains under harvest across the fleet, and the networks taking part (src/harvest). */
  readonly harvest: HarvestWindow;
  /** Sessions that may be tarpitted at once (MXSCREEN_TARPIT_SHARE of MXSCREEN_MAX_CONNECTIONS). */
  readonly tarpitSessions: number;
}

const PROXY_HEADER_TIMEOUT_MS = 10_000;
/** How often domains under harvest are looked at for the end of it: their counts leave the window slot by slot. */
const HARVEST_TICK_MS = 1_000;

/** A connection already refused and closed: whatever it still sends or does is of no interest. */
const REFUSED: ConnectionHandlers = { data: () => {}, end: () => {}, close: () => {} };

/**
 * The main thread's part of every connection: look the client up, greet it (or refuse it),
 * run the greet wait, and hand clean clients to the session pool. It owns every socket.
 */
export class AcceptLoop {
  private readonly listeners: Listener[] = [];
  private readonly limits: ConnectionLimits;
  private readonly badRecipients: BadRecipientWindow;
  private readonly open = new Set<Screening>();
  private readonly live = new LiveSessions<Screening>((screening) => this.endIfBanned(screening));
  private readonly dnsblVerdicts: DnsblVerdicts;
  /** MXSCREEN_BAN_ENDS_SESSIONS, outside observe mode: open connections are filed by client for the bans to find. */
  private readonly endsOnBan: boolean;
  private readonly context: ScreeningContext;
  private readonly stress: Stress;
  private harvestTimer: ReturnType<typeof setInterval> | undefined;
  private stopping = false;

  constructor(
    private readonly options: AcceptLoopOptions,
    private readonly store: Store,
    private readonly pool: SessionPool,
    private readonly concluder: Concluder,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    this.limits = new ConnectionLimits(options.limits);
    this.badRecipients = new BadRecipientWindow(options.badRecipientWindow, options.badRecipientCounters);
    this.stress = new Stress(options.stressConnections);
    this.dnsblVerdicts = new DnsblVerdicts(options.gate.checks.dnsblTtlMs);
    // In observe mode a ban blocks nothing, so it ends nothing either.
    this.endsOnBan = options.gate.banEndsSessions && !options.gate.observe;
    if (this.endsOnBan) store.onBanInForce((prefix) => this.live.banned(prefix));
    this.context = {
      gate: options.gate,
      pool,
      concluder,
      logger,
      metrics,
      deadlines: new Deadlines(),
      greylist: options.greylist,
      rates: options.rates,
      dnsblRenewed: (ip) => this.dnsblVerdicts.renewed(ip, Date.now()),
      acrossConnections: (record, facts) => this.acrossConnections(record, facts),
      harvested: () => options.harvest.snapshot(),
      tarpit: new TarpitBudget(options.tarpitSessions, () => this.stress.active, metrics),
      stressed: () => this.stress.active,
      ended: (screening) => {
        this.open.delete(screening);
        if (this.endsOnBan) this.live.delete(screening);
        this.updateStress();
        if (screening.counted) this.limits.release(screening.record.ip);
      },
    };
  }

  async start(): Promise<Listener[]> {
    for (const address of this.options.listen) {
      const listener = await listen({
        host: address.host,
        port: address.port,
        maxConnections: this.options.listenerCap,
        reusePort: this.options.reusePort,
        tls: this.options.tls,
        openFiles: this.options.openFiles,
        onRelisten: (message) => this.logger.note("warn", `listener on ${address.host}:${address.port} ${message}`),
        onConnection: (socket) => this.accept(socket),
      }).catch((error) => {
        throw new Error(`cannot listen on ${address.host}:${address.port}: ${(error as Error).message}`, { cause: error });
      });
      this.listeners.push(listener);
    }
    this.harvestTimer = setInterval(() => this.options.harvest.tick(Date.now()), HARVEST_TICK_MS);
    return this.listeners;
  }

  get connections(): number {
    return this.open.size;
  }

  /** True while this process is under stress (the greet wait is the short one). */
  get stressed(): boolean {
    return this.stress.active;
  }

  get listening(): boolean {
    return this.listeners.length === this.options.listen.length && !this.stopping;
  }

  /** Stops accepting and says goodbye to clients still in the greet wait; sessions are the pool's to finish. */
  stop(): void {
    this.stopping = true;
    clearInterval(this.harvestTimer);
    for (const listener of this.listeners) listener.close();
    for (const connection of [...this.open]) connection.shutdown();
  }

  /**
   * A connection over a limit or a rate: `421` and close (enforce, ban), or let in and only
   * logged (ignore, observe). Returns the handlers of a refused connection.
   */
  private refuseAtAccept(
    socket: ClientSocket,
    record: ConnectionRecord,
    check: typeof connectionLimit | typeof connRate,
    facts: AcceptFacts,
  ): ConnectionHandlers | undefined {
    const gate = this.options.gate;
    const hit = check.evaluate(facts, gate.checks);
    if (hit === undefined) return undefined;
    // Past MXSCREEN_MAX_CONNECTIONS the server itself is full: every client is refused, in any
    // mode, and none is banned for it.
    const action = facts.breach?.limit === "total" ? "close" : effectiveAction(check, gate.actions, gate.observe);
    const finding: Finding = { event: check.tag, check: check.id, action, evidence: hit.evidence };
    if (action === "ignore" || action === "observe") {
      this.logger.log({ event: finding.event, client: clientLabel(record), ...finding.evidence, action });
      return undefined;
    }
    socket.write(hit.reply);
    socket.end();
    this.concluder.conclude(record, finding, Date.now());
    return REFUSED;
  }

  private updateStress(): void {
    const open = this.open.size;
    const changed = this.stress.update(open);
    if (changed === undefined) return;
    const waitMs = changed ? this.options.gate.greetWaitStressMs : this.options.gate.greetWaitMs;
    this.logger.note(changed ? "warn" : "info", changed ? "under stress: greet wait shortened" : "stress over: greet wait restored", {
      open,
      threshold: this.options.stressConnections,
      greet_wait_ms: waitMs,
    });
  }

  /** A ban may cover this open connection: it ends when the lists now say banned (an allow entry still wins). */
  private endIfBanned(screening: Screening): void {
    const standing = standingOf(this.options.allow, this.store, screening.record.ip, Date.now(), this.options.passTtls);
    if (standing.kind === "banned") screening.banned(standing.entry);
  }

  /**
   * The checks across connections and nodes, for a session that ended: its unknown recipients
   * added to its network's, its domains' and its address's recent ones (every one counts, even
   * from a session the dictionary check already closed). The harvest finding comes first: its
   * ban is of the whole network, and the verdict's ban is the first finding's.
   */
  private acrossConnections(record: ConnectionRecord, facts: SessionFacts): Finding[] {
    if (facts.badRecipients === 0) return [];
    const now = Date.now();
    const window = this.badRecipients.add(record.ip, facts.badRecipients, facts.badRecipientDomains, now);
    const harvesting = this.options.harvest.sessionEnded(record.ip, facts.badRecipients, facts.badRecipientDomains, now);
    // A DNSWL listing at or below MXSCREEN_DNSWL_THRESHOLD skips every check: its unknowns count, it is not judged by them.
    if (facts.dnsblScore !== undefined && facts.dnsblScore <= this.options.gate.checks.dnswlThreshold) return [];
    const findings: Finding[] = [];
    if (harvesting !== undefined) findings.push(this.harvestFinding(harvesting));
    if (window.over && !facts.findings.some((hit) => hit.check === "dictionary")) {
      const action = effectiveAction(dictionary, this.options.gate.actions, this.options.gate.observe);
      const domain = window.domain && { domain: window.domain.name, domain_bad_recipients: window.domain.count };
      findings.push({
        event: dictionary.tag,
        check: dictionary.id,
        action,
        evidence: { prefix: window.prefix, prefix_bad_recipients: window.count, ...domain },
      });
    }
    return findings;
  }

  /**
   * A client that tried unknown recipients at a domain under harvest does not stay on the pass
   * list (so it is greylisted there next time); with the action `ban`, its whole network is banned
   * once MXSCREEN_HARVEST_PREFIX_CLIENTS of its addresses did so, and not one sender that mistyped.
   */
  private harvestFinding(harvesting: HarvestTry): Finding {
    const configured = effectiveAction(harvest, this.options.gate.actions, this.options.gate.observe);
    const banned = configured === "ban" && harvesting.over;
    return {
      event: harvest.tag,
      check: harvest.id,
      action: configured === "ban" && !banned ? "enforce" : configured,
      evidence: {
        domain: harvesting.domain,
        domain_bad_recipients: harvesting.count,
        prefix: formatPrefix(harvesting.network),
        prefix_clients: harvesting.clients,
      },
      ...(banned && { banPrefix: harvesting.network }),
      takesPass: configured === "enforce" || configured === "ban",
    };
  }

  private accept(socket: ClientSocket): ConnectionHandlers {
    const now = Date.now();
    const ip = parseIP(socket.remoteAddress);
    if (ip === null || this.stopping) {
      socket.destroy();
      return REFUSED;
    }
    const local = { address: socket.localAddress, port: socket.localPort };
    const record: ConnectionRecord = { ip, address: formatIP(ip), port: socket.remotePort, openedAt: now, local };
    if (this.options.trustedProxies.some((prefix) => contains(prefix, ip))) return this.acceptProxied(socket, record);
    return this.screen(socket, record);
  }

  /**
   * A trusted proxy names the client in a PROXY header before anything else; until it has,
   * we say nothing. A malformed header, or none within the time limit, closes the connection.
   */
  private acceptProxied(socket: ClientSocket, proxy: ConnectionRecord): ConnectionHandlers {
    let buffered = new Uint8Array(0);
    let inner: ConnectionHandlers | undefined;
    let done = false;
    const fail = (reason: string) => {
      done = true;
      clearTimeout(timer);
      socket.destroy();
      this.concluder.conclude(proxy, { event: "PROXY", check: "proxy-protocol", action: "close", evidence: { reason } }, Date.now());
    };
    const timer = setTimeout(() => fail(`no complete PROXY header within ${PROXY_HEADER_TIMEOUT_MS} ms`), PROXY_HEADER_TIMEOUT_MS);
    return {
      data: (bytes) => {
        if (inner) return inner.data(bytes);
        if (done) return;
        const joined = new Uint8Array(buffered.length + bytes.length);
        joined.set(buffered, 0);
        joined.set(bytes, buffered.length);
        buffered = joined;
        const header = parseProxyHeader(buffered);
        if (header.status === "incomplete") return;
        if (header.status === "invalid") return fail(header.reason);
        clearTimeout(timer);
        const ip = header.source ? parseIP(header.source.address) : proxy.ip;
        if (!ip) return fail(`PROXY header names ${JSON.stringify(header.source?.address)}, not an address`);
        const via = `${proxy.address}:${proxy.port}`;
        const record: ConnectionRecord = {
          ip,
          address: formatIP(ip),
          port: header.source?.port ?? proxy.port,
          openedAt: proxy.openedAt,
          local: header.destination ?? proxy.local,
          via,
        };
        inner = this.screen(socket, record);
        const rest = buffered.subarray(header.length);
        if (rest.length > 0) inner.data(rest);
      },
      end: () => {
        if (inner) return inner.end();
        if (!done) fail("closed before a complete PROXY header");
      },
      close: () => {
        if (inner) return inner.close();
        if (!done) fail("closed before a complete PROXY header");
      },
    };
  }

  private screen(socket: ClientSocket, record: ConnectionRecord): ConnectionHandlers {
    const now = Date.now();
    const ip = record.ip;
    const standing = standingOf(this.options.allow, this.store, ip, now, this.options.passTtls);
    const client = { address: record.address };
    // Counted before the limits, refused connections too: a client that keeps knocking stays over.
    const connectionRate = standing.kind === "new" || standing.kind === "passed" ? this.options.rates.connection(ip, now) : undefined;
    if (connectionRate !== undefined) {
      const refused = this.refuseAtAccept(socket, record, connRate, { client, breach: undefined, connectionRate });
      if (refused) return refused;
    }
    const breach = standing.kind === "allowed" ? undefined : this.limits.admit(ip);
    if (breach !== undefined) {
      const refused = this.refuseAtAccept(socket, record, connectionLimit, { client, breach, connectionRate: undefined });
      if (refused) return refused;
    }
    // .domain allow entries need the client's name: looked up for the clients it can change
    // (new ones, during the greet wait; banned ones, before they are refused), never for passed ones.
    const named = standing.kind === "new" || standing.kind === "banned" ? this.options.allowByName?.(ip) : undefined;
    // New clients are looked up during their greet wait; a passed one only once its DNSBL
    // verdict is older than MXSCREEN_DNSBL_TTL (its greeting then waits for the answers).
    const lookups = this.options.dnsbl;
    const dnsblDue = lookups !== undefined &&
      (standing.kind === "new" || (standing.kind === "passed" && this.dnsblVerdicts.due(ip, standing.entry, now)));
    const dnsbl = dnsblDue ? lookups.start(ip, now) : undefined;
    const counted = standing.kind !== "allowed" && breach === undefined;
    const screening = new Screening(this.context, socket, record, standing, counted, dnsbl);
    this.open.add(screening);
    if (standing.kind !== "allowed" && this.endsOnBan) this.live.add(screening);
    this.updateStress();
    screening.start(named, this.stress.active, now);
    return screening;
  }
}
