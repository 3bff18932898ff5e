import { actionVariable, type CheckId, CHECKS, type ChecksSettings, effectiveAction } from "../checks/registry.ts";
import { CHECK_ACTIONS, type CheckAction, type EffectiveAction } from "../checks/types.ts";
import { formatIP, parseIP, type Prefix } from "../ip/address.ts";
import { ConfigError } from "./config-error.ts";
import { parseDuration } from "./duration.ts";
import {
  type ListenAddress,
  parseBoolean,
  parseChoice,
  parseDomainList,
  parseHostPort,
  parseInteger,
  parseListen,
  parsePrefixList,
  parseSize,
} from "./values.ts";
import { parseWorkers } from "./workers.ts";
import { parseUpstreamTls, type UpstreamTlsConfig } from "./upstream-tls.ts";

export interface Config {
  readonly listen: readonly ListenAddress[];
  readonly hostname: string;
  /** Where a banner name that is not fully qualified came from, to warn at start; undefined when it is. */
  readonly hostnameUnqualified: "MXSCREEN_HOSTNAME" | "the system hostname" | undefined;
  readonly node: string;
  readonly dbUrl: string;
  readonly dbAuthToken: string | undefined;
  readonly dbSyncUrl: string | undefined;
  readonly spoolDir: string;
  /** Empty means any domain. */
  readonly acceptDomains: readonly string[];
  /** 0 runs sessions inline on the main thread. */
  readonly workers: number;
  /** Processes that each listen on the same port (SO_REUSEPORT); the first one starts the others. */
  readonly processes: number;
  /** 0 for the first process, 1… for the ones it started (set by it, not by operators). */
  readonly processIndex: number;
  readonly greetWaitMs: number;
  /** The greet wait while this process is under stress (postscreen's `${stress?{2}:{6}}s`). */
  readonly greetWaitStressMs: number;
  /** Open connections from which this process is under stress; it ends below four fifths of it. */
  readonly stressConnections: number;
  readonly passTtlMs: number;
  /** MXSCREEN_PROTOCOL_PASS_TTL: how long a pass holds for the deep protocol tests. */
  readonly protocolPassTtlMs: number;
  readonly banTtlMs: number;
  readonly banAction: "reject" | "drop";
  /** A ban made anywhere in the fleet ends the open connections it covers (421 4.7.1). */
  readonly banEndsSessions: boolean;
  readonly allow: readonly Prefix[];
  /** `.lists.example` entries of MXSCREEN_ALLOW: clients whose forward-confirmed reverse name ends so. */
  readonly allowDomains: readonly string[];
  readonly trustedProxies: readonly Prefix[];
  readonly mode: "enforce" | "observe";
  readonly dns: ListenAddress | undefined;
  /** undefined: the admin HTTP server is off. */
  readonly adminListen: ListenAddress | undefined;
  readonly adminToken: string | undefined;
  /** MXSCREEN_ADMIN_URL: where the other nodes nudge this one; undefined: from the admin listen address. */
  readonly adminUrl: string | undefined;
  readonly queueFile: string;
  /** MXSCREEN_UPSTREAM: relay to this MTA; undefined: deliver to the spool. */
  readonly upstream:
    | {
      readonly host: string;
      readonly port: number;
      readonly identity: "xclient" | "xforward" | "proxy" | "none" | "auto";
      readonly timeoutMs: number;
      /** MXSCREEN_UPSTREAM_DATA_TIMEOUT: for the answer to the final `.` (RFC 5321 4.5.3.2.6: 10 minutes). */
      readonly dataEndTimeoutMs: number;
      /** MXSCREEN_UPSTREAM_POOL: idle connections kept per worker for later sessions; 0 = one connection per session. */
      readonly poolSize: number;
      /** MXSCREEN_UPSTREAM_IDLE_TIMEOUT: an idle connection is closed after this, before the upstream's own timeout. */
      readonly idleTimeoutMs: number;
    } & UpstreamTlsConfig
    | undefined;
  /** PEM files; both set, STARTTLS is offered. */
  readonly tls: { readonly certPath: string; readonly keyPath: string } | undefined;
  readonly followIntervalMs: number;
  /** MXSCREEN_FOLLOW_IDLE_INTERVAL: the slowest pace of following, after reads that found nothing. */
  readonly followIdleIntervalMs: number;
  /** MXSCREEN_REPLICA_SYNC_INTERVAL: how often an embedded replica's file takes its primary's new frames. */
  readonly replicaSyncIntervalMs: number;
  /** MXSCREEN_COUNTERS_INTERVAL: how often a node writes its fleet-wide counts and reads the other nodes'. */
  readonly countersIntervalMs: number;
  /** MXSCREEN_EVENTS_RETENTION and MXSCREEN_EVENTS_MAX_ROWS: what the housekeeping keeps of `events`. */
  readonly retention: { readonly eventsMs: number; readonly eventsMaxRows: number };
  /** MXSCREEN_OBSERVE_WINDOW and MXSCREEN_OBSERVE_RETRY_WINDOW: what the estimate of enforcing the checks in `ignore` or `observe` reads. */
  readonly observe: {
    readonly windowMs: number;
    readonly retryWindowMs: number;
    readonly actions: Readonly<Record<CheckId, EffectiveAction>>;
  };
  /** MXSCREEN_DB_TIMEOUT: the longest any one call to the database may take before it counts as an outage. */
  readonly dbTimeoutMs: number;
  /** How long one DNS question may take before it counts as a failure. */
  readonly dnsTimeoutMs: number;
  readonly log: "text" | "json" | "postfix";
  readonly pipelining: boolean;
  /** A CR without LF in message content: refuse the message (550 5.5.2 at the final dot) or turn it into CRLF. */
  readonly bareCr: "reject" | "normalize";
  readonly maxMessageSize: number;
  readonly maxLineLength: number;
  readonly maxRecipients: number;
  readonly commandTimeoutMs: number;
  readonly dataTimeoutMs: number;
  /** The command and data timeouts, at most, in a session begun under stress. */
  readonly stressTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  readonly ipv6PrefixLength: number;
  readonly checks: ChecksSettings;
  /** MXSCREEN_ACTION_<CHECK> for every check in the registry, defaults filled in. */
  readonly checkActions: Readonly<Record<CheckId, CheckAction>>;
  /** The greylist timings and cap; undefined when nothing greylists (MXSCREEN_GREYLIST off, and the harvest check only logs). */
  readonly greylist:
    | { readonly delayMs: number; readonly windowMs: number; readonly passTtlMs: number; readonly maxTriplets: number }
    | undefined;
  /** The harvest check's thresholds; `domains`: the domains that can be harvested (MXSCREEN_ACCEPT_DOMAINS, empty for any). */
  readonly harvest: { readonly threshold: number; readonly prefixClients: number; readonly domains: readonly string[] };
  readonly connectionLimits: { readonly perClient: number; readonly perPrefix: number; readonly total: number };
  readonly badRecipientWindow: { readonly max: number; readonly windowMs: number };
  /**
   * MXSCREEN_TARPIT_DELAY (per hit), MXSCREEN_TARPIT_MAX (per reply) and MXSCREEN_TARPIT_SHARE:
   * at most this many sessions (a share of MXSCREEN_MAX_CONNECTIONS) are tarpitted at once.
   */
  readonly tarpit: { readonly delayMs: number; readonly maxMs: number; readonly sessions: number };
  /** MXSCREEN_ variables that no setting reads: most likely typos, warned about at start. */
  readonly unknownVariables: readonly string[];
}

export interface HostFacts {
  readonly hostname: string;
  readonly cpus: number;
  /** The open-files limit of this process: every held connection is one. */
  readonly openFiles: number;
}

/**
 * A banner name other MTAs can look up: two labels or more, the last one not a number. Senders
 * and receivers check the banner and EHLO name against DNS (RFC 5321 4.1.1.1: a fully
 * qualified domain name), so a bare `vm` or `localhost` marks this MX as misconfigured.
 */
const FULLY_QUALIFIED = /^[^.]+(\.[^.]+)*\.[A-Za-z][A-Za-z0-9-]*$/;

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

/** Files kept back from MXSCREEN_MAX_CONNECTIONS' default for the store, spool, DNS, workers and upstream. */
function reservedFiles(openFiles: number): number {
  return Math.max(64, Math.ceil(openFiles * 0.05));
}

/** The listen addresses that are one of ours (not the wildcard), for helo-claims. */
function listenAddresses(listen: readonly ListenAddress[]): string[] {
  return listen.flatMap(({ host }) => {
    const ip = parseIP(host);
    return ip === null || (ip.family === 4 ? ip.value === 0 : ip.groups.every((group) => group === 0)) ? [] : [formatIP(ip)];
  });
}

/**
 * Reads every MXSCREEN_ setting once. Throws ConfigError on the first bad value: start-up
 * stops with that one line rather than running with a setting the operator did not mean.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, host: HostFacts): Config {
  // Read by the launcher (src/cli/launch.mjs), not by the server.
  const read = new Set<string>(["MXSCREEN_RUNTIME"]);
  const get = (name: string): string | undefined => {
    read.add(name);
    const value = env[name];
    return value === undefined || value.trim() === "" ? undefined : value;
  };

  const dur = (name: string, fallback: string) => parseDuration(name, get(name) ?? fallback);
  const hostnameSetting = get("MXSCREEN_HOSTNAME");
  const hostname = hostnameSetting ?? host.hostname;
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(hostname)) {
    throw new ConfigError("MXSCREEN_HOSTNAME", hostname, "a host name of letters, digits, dots and hyphens");
  }
  const allowText = get("MXSCREEN_ALLOW");
  const allowItems = (allowText ?? "").split(",").map((item) => item.trim()).filter((item) => item !== "");
  const allowDomains = allowItems.filter((item) => item.startsWith(".")).map((item) => {
    if (!/^(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/i.test(item)) {
      throw new ConfigError(
        "MXSCREEN_ALLOW",
        allowText!,
        `CIDR prefixes and .domain suffixes (${JSON.stringify(item)} is not a domain suffix)`,
      );
    }
    return item.toLowerCase();
  });
  const dns = get("MXSCREEN_DNS");
  const upstreamText = get("MXSCREEN_UPSTREAM");
  const upstreamUrl = upstreamText === undefined
    ? undefined
    : /^smtp:\/\/(?:\[([^\]]+)\]|([^:/\[\]]+))(?::(\d{1,5}))?\/?$/.exec(upstreamText.trim());
  if (upstreamText !== undefined && (!upstreamUrl || Number(upstreamUrl[3] ?? 25) > 65535 || Number(upstreamUrl[3] ?? 25) < 1)) {
    throw new ConfigError("MXSCREEN_UPSTREAM", upstreamText, "smtp://host:port of the MTA behind mxscreen, e.g. smtp://127.0.0.1:10025");
  }
  // Checked even without MXSCREEN_UPSTREAM, so a typo shows before the day it is needed.
  const upstreamIdentity = parseChoice("MXSCREEN_UPSTREAM_IDENTITY", get("MXSCREEN_UPSTREAM_IDENTITY") ?? "auto", [
    "xclient",
    "xforward",
    "proxy",
    "none",
    "auto",
  ]);
  const upstreamTimeoutMs = dur("MXSCREEN_UPSTREAM_TIMEOUT", "2m");
  const upstreamTls = parseUpstreamTls(get);
  const upstreamDataEndTimeoutMs = dur("MXSCREEN_UPSTREAM_DATA_TIMEOUT", "10m");
  const upstreamPool = {
    poolSize: parseInteger("MXSCREEN_UPSTREAM_POOL", get("MXSCREEN_UPSTREAM_POOL") ?? "16", 0, 1000),
    idleTimeoutMs: dur("MXSCREEN_UPSTREAM_IDLE_TIMEOUT", "5s"),
  };
  // RFC 5321 4.5.3.2.7 gives a server 5 minutes before it may drop an idle client (Postfix's smtpd_timeout, 300s).
  if (upstreamPool.idleTimeoutMs === 0 || upstreamPool.idleTimeoutMs >= 300_000) {
    throw new ConfigError(
      "MXSCREEN_UPSTREAM_IDLE_TIMEOUT",
      get("MXSCREEN_UPSTREAM_IDLE_TIMEOUT")!,
      "a duration above 0 and below 5m, the upstream's own idle timeout (RFC 5321 4.5.3.2.7, Postfix smtpd_timeout)",
    );
  }
  const certPath = get("MXSCREEN_TLS_CERT");
  const keyPath = get("MXSCREEN_TLS_KEY");
  if ((certPath === undefined) !== (keyPath === undefined)) {
    const [variable, value] = certPath === undefined ? ["MXSCREEN_TLS_KEY", keyPath!] : ["MXSCREEN_TLS_CERT", certPath];
    throw new ConfigError(variable, value, "MXSCREEN_TLS_CERT and MXSCREEN_TLS_KEY set together (PEM files)");
  }
  read.add("MXSCREEN_ADMIN_LISTEN");
  const adminText = env.MXSCREEN_ADMIN_LISTEN ?? "127.0.0.1:8025";
  const adminToken = get("MXSCREEN_ADMIN_TOKEN");
  if (adminToken !== undefined && (adminToken.length < 16 || /\s/.test(adminToken))) {
    throw new ConfigError(
      "MXSCREEN_ADMIN_TOKEN",
      "(hidden)",
      "a token of at least 16 characters without spaces, e.g. from openssl rand -hex 24",
    );
  }
  const int = (name: string, fallback: number, min: number, max: number) => parseInteger(name, get(name) ?? String(fallback), min, max);
  const greetWaitMs = dur("MXSCREEN_GREET_WAIT", "6s");
  const commandTimeoutMs = dur("MXSCREEN_COMMAND_TIMEOUT", "5m");
  const maxText = get("MXSCREEN_MAX_CONNECTIONS");
  if (maxText !== undefined && /^\d+$/.test(maxText.trim()) && Number(maxText) > host.openFiles) {
    throw new ConfigError(
      "MXSCREEN_MAX_CONNECTIONS",
      maxText,
      `at most ${host.openFiles}, this process's open-files limit (raise it with ulimit -n or systemd LimitNOFILE, or set MXSCREEN_PROCESSES)`,
    );
  }
  const maxConnections = int("MXSCREEN_MAX_CONNECTIONS", Math.max(1, host.openFiles - reservedFiles(host.openFiles)), 1, host.openFiles);
  const processes = int("MXSCREEN_PROCESSES", 1, 1, 64);
  const checkActions = Object.fromEntries(
    CHECKS.map((
      check,
    ) => [check.id, parseChoice(actionVariable(check.id), get(actionVariable(check.id)) ?? check.defaultAction, CHECK_ACTIONS)]),
  ) as Record<CheckId, CheckAction>;
  // Each check declares its knobs (src/checks/types.ts): their variables, defaults and parsers.
  const listen = parseListen("MXSCREEN_LISTEN", get("MXSCREEN_LISTEN") ?? "0.0.0.0:2525");
  const acceptDomains = parseDomainList("MXSCREEN_ACCEPT_DOMAINS", get("MXSCREEN_ACCEPT_DOMAINS") ?? "");
  const knobs = {
    ...Object.fromEntries(
      CHECKS.flatMap((check) => Object.entries(check.settings)).map((
        [key, knob],
      ) => [key, knob.parse(knob.variable, get(knob.variable) ?? knob.fallback)]),
    ),
    hostname,
  } as ChecksSettings;
  const checks: ChecksSettings = { ...knobs, acceptDomains, listenAddresses: listenAddresses(listen) };
  const mode = parseChoice("MXSCREEN_MODE", get("MXSCREEN_MODE") ?? "enforce", ["enforce", "observe"]);
  // The harvest check greylists new clients for a domain under harvest, whatever MXSCREEN_GREYLIST says.
  const greylisting = checks.greylist || (mode === "enforce" && checkActions.harvest !== "ignore");
  const config: Config = {
    listen,
    hostname,
    hostnameUnqualified: FULLY_QUALIFIED.test(hostname)
      ? undefined
      : hostnameSetting === undefined
      ? "the system hostname"
      : "MXSCREEN_HOSTNAME",
    // Fly.io names each machine's region (ams, iad …): one node per region needs no setting.
    node: get("MXSCREEN_NODE") ?? nonEmpty(env.FLY_REGION) ?? host.hostname,
    dbUrl: get("MXSCREEN_DB_URL") ?? "file:data/mxscreen.db",
    dbAuthToken: get("MXSCREEN_DB_AUTH_TOKEN"),
    dbSyncUrl: get("MXSCREEN_DB_SYNC_URL"),
    spoolDir: get("MXSCREEN_SPOOL_DIR") ?? "data/spool",
    acceptDomains,
    workers: parseWorkers(get("MXSCREEN_WORKERS") ?? "auto", host.cpus),
    processes,
    processIndex: int("MXSCREEN_PROCESS_INDEX", 0, 0, processes - 1),
    greetWaitMs,
    // 2s as postscreen, but never longer than a greet wait set shorter than that.
    greetWaitStressMs: get("MXSCREEN_GREET_WAIT_STRESS") === undefined
      ? Math.min(2000, greetWaitMs)
      : dur("MXSCREEN_GREET_WAIT_STRESS", "2s"),
    stressConnections: int("MXSCREEN_STRESS_CONNECTIONS", Math.max(1, Math.floor(maxConnections * 0.75)), 1, host.openFiles),
    passTtlMs: dur("MXSCREEN_PASS_TTL", "1d"),
    // Unset, as long as the greet test's: a pass then lasts exactly MXSCREEN_PASS_TTL, as before there were two.
    protocolPassTtlMs: dur("MXSCREEN_PROTOCOL_PASS_TTL", get("MXSCREEN_PASS_TTL") ?? "1d"),
    banTtlMs: dur("MXSCREEN_BAN_TTL", "1d"),
    banAction: parseChoice("MXSCREEN_BAN_ACTION", get("MXSCREEN_BAN_ACTION") ?? "reject", ["reject", "drop"]),
    banEndsSessions: parseBoolean("MXSCREEN_BAN_ENDS_SESSIONS", get("MXSCREEN_BAN_ENDS_SESSIONS") ?? "true"),
    allow: parsePrefixList("MXSCREEN_ALLOW", allowItems.filter((item) => !item.startsWith(".")).join(",")),
    allowDomains,
    trustedProxies: parsePrefixList("MXSCREEN_TRUSTED_PROXIES", get("MXSCREEN_TRUSTED_PROXIES") ?? ""),
    mode,
    dns: dns === undefined ? undefined : parseHostPort("MXSCREEN_DNS", dns),
    adminListen: adminText.trim() === "" ? undefined : parseHostPort("MXSCREEN_ADMIN_LISTEN", adminText),
    adminToken,
    adminUrl: get("MXSCREEN_ADMIN_URL"),
    queueFile: get("MXSCREEN_QUEUE_FILE") ?? "data/store-queue.jsonl",
    upstream: upstreamUrl
      ? {
        host: upstreamUrl[1] ?? upstreamUrl[2],
        port: Number(upstreamUrl[3] ?? 25),
        identity: upstreamIdentity,
        timeoutMs: upstreamTimeoutMs,
        dataEndTimeoutMs: upstreamDataEndTimeoutMs,
        ...upstreamPool,
        ...upstreamTls,
      }
      : undefined,
    tls: certPath === undefined ? undefined : { certPath, keyPath: keyPath! },
    followIntervalMs: dur("MXSCREEN_FOLLOW_INTERVAL", "250ms"),
    followIdleIntervalMs: dur("MXSCREEN_FOLLOW_IDLE_INTERVAL", "5s"),
    replicaSyncIntervalMs: dur("MXSCREEN_REPLICA_SYNC_INTERVAL", "5s"),
    countersIntervalMs: dur("MXSCREEN_COUNTERS_INTERVAL", "5s"),
    retention: {
      eventsMs: dur("MXSCREEN_EVENTS_RETENTION", "30d"),
      eventsMaxRows: int("MXSCREEN_EVENTS_MAX_ROWS", 10_000_000, 1000, 1_000_000_000),
    },
    observe: {
      windowMs: dur("MXSCREEN_OBSERVE_WINDOW", "7d"),
      retryWindowMs: dur("MXSCREEN_OBSERVE_RETRY_WINDOW", "4h"),
      actions: effectiveActions(checkActions, mode === "observe"),
    },
    dbTimeoutMs: dur("MXSCREEN_DB_TIMEOUT", "3s"),
    dnsTimeoutMs: dur("MXSCREEN_DNS_TIMEOUT", "5s"),
    log: parseChoice("MXSCREEN_LOG", get("MXSCREEN_LOG") ?? "text", ["text", "json", "postfix"]),
    pipelining: parseBoolean("MXSCREEN_PIPELINING", get("MXSCREEN_PIPELINING") ?? "false"),
    bareCr: parseChoice("MXSCREEN_BARE_CR", get("MXSCREEN_BARE_CR") ?? "reject", ["reject", "normalize"]),
    maxMessageSize: parseSize("MXSCREEN_MAX_MESSAGE_SIZE", get("MXSCREEN_MAX_MESSAGE_SIZE") ?? "25M"),
    maxLineLength: parseInteger("MXSCREEN_MAX_LINE_LENGTH", get("MXSCREEN_MAX_LINE_LENGTH") ?? "1000", 512, 65536),
    maxRecipients: parseInteger("MXSCREEN_MAX_RECIPIENTS", get("MXSCREEN_MAX_RECIPIENTS") ?? "100", 1, 100000),
    commandTimeoutMs,
    dataTimeoutMs: dur("MXSCREEN_DATA_TIMEOUT", "10m"),
    // 10s as Postfix's smtpd_timeout under stress, but never longer than a command timeout set shorter.
    stressTimeoutMs: get("MXSCREEN_COMMAND_TIMEOUT_STRESS") === undefined
      ? Math.min(10_000, commandTimeoutMs)
      : dur("MXSCREEN_COMMAND_TIMEOUT_STRESS", "10s"),
    shutdownTimeoutMs: dur("MXSCREEN_SHUTDOWN_TIMEOUT", "30s"),
    ipv6PrefixLength: parseInteger("MXSCREEN_IPV6_PREFIX", get("MXSCREEN_IPV6_PREFIX") ?? "64", 16, 128),
    checks,
    checkActions,
    greylist: greylisting
      ? {
        delayMs: checks.greylistDelayMs,
        windowMs: checks.greylistWindowMs,
        passTtlMs: checks.greylistPassTtlMs,
        maxTriplets: checks.greylistMaxTriplets,
      }
      : undefined,
    harvest: { threshold: checks.harvestThreshold, prefixClients: checks.harvestPrefixClients, domains: acceptDomains },
    connectionLimits: { perClient: checks.maxConnPerClient, perPrefix: checks.maxConnPerPrefix, total: maxConnections },
    badRecipientWindow: { max: checks.maxBadRecipientsPerPrefix, windowMs: checks.badRecipientWindowMs },
    tarpit: {
      delayMs: dur("MXSCREEN_TARPIT_DELAY", "1s"),
      maxMs: dur("MXSCREEN_TARPIT_MAX", "10s"),
      sessions: Math.floor(maxConnections * int("MXSCREEN_TARPIT_SHARE", 10, 0, 100) / 100),
    },
    unknownVariables: [],
  };
  const unknownVariables = Object.keys(env).filter((name) => name.startsWith("MXSCREEN_") && !read.has(name)).sort();
  if (config.dbTimeoutMs < 100) {
    throw new ConfigError("MXSCREEN_DB_TIMEOUT", get("MXSCREEN_DB_TIMEOUT") ?? "", "a duration of at least 100ms");
  }
  if (config.countersIntervalMs < 100) {
    throw new ConfigError("MXSCREEN_COUNTERS_INTERVAL", get("MXSCREEN_COUNTERS_INTERVAL") ?? "", "a duration of at least 100ms");
  }
  if (config.followIntervalMs < 50) {
    throw new ConfigError("MXSCREEN_FOLLOW_INTERVAL", get("MXSCREEN_FOLLOW_INTERVAL") ?? "", "a duration of at least 50ms");
  }
  if (config.replicaSyncIntervalMs < 1000) {
    throw new ConfigError("MXSCREEN_REPLICA_SYNC_INTERVAL", get("MXSCREEN_REPLICA_SYNC_INTERVAL") ?? "", "a duration of at least 1s");
  }
  if (config.followIdleIntervalMs < config.followIntervalMs) {
    throw new ConfigError(
      "MXSCREEN_FOLLOW_IDLE_INTERVAL",
      get("MXSCREEN_FOLLOW_IDLE_INTERVAL") ?? "",
      "a duration at least MXSCREEN_FOLLOW_INTERVAL",
    );
  }
  if (config.retention.eventsMs === 0) {
    throw new ConfigError("MXSCREEN_EVENTS_RETENTION", get("MXSCREEN_EVENTS_RETENTION") ?? "", "a duration above 0");
  }
  if (config.observe.windowMs <= config.observe.retryWindowMs) {
    throw new ConfigError(
      "MXSCREEN_OBSERVE_WINDOW",
      get("MXSCREEN_OBSERVE_WINDOW") ?? "7d",
      "a duration longer than MXSCREEN_OBSERVE_RETRY_WINDOW: hits younger than that are not judged yet",
    );
  }
  if (config.passTtlMs === 0) throw new ConfigError("MXSCREEN_PASS_TTL", get("MXSCREEN_PASS_TTL") ?? "", "a duration above 0");
  if (config.protocolPassTtlMs === 0) {
    throw new ConfigError("MXSCREEN_PROTOCOL_PASS_TTL", get("MXSCREEN_PROTOCOL_PASS_TTL") ?? "", "a duration above 0");
  }
  if (config.greylist !== undefined && config.greylist.windowMs <= config.greylist.delayMs) {
    throw new ConfigError(
      "MXSCREEN_GREYLIST_WINDOW",
      get("MXSCREEN_GREYLIST_WINDOW") ?? "4h",
      "a duration longer than MXSCREEN_GREYLIST_DELAY, or no retry could ever pass",
    );
  }
  if (config.processes > 1 && config.listen.some((address) => address.port === 0)) {
    throw new ConfigError(
      "MXSCREEN_LISTEN",
      get("MXSCREEN_LISTEN") ?? "",
      "fixed ports when MXSCREEN_PROCESSES is above 1 (port 0 would give each process a different port)",
    );
  }
  if (config.greetWaitStressMs > config.greetWaitMs) {
    throw new ConfigError(
      "MXSCREEN_GREET_WAIT_STRESS",
      get("MXSCREEN_GREET_WAIT_STRESS") ?? "2s",
      `a duration no longer than MXSCREEN_GREET_WAIT (${config.greetWaitMs} ms)`,
    );
  }
  if (config.commandTimeoutMs === 0) {
    throw new ConfigError("MXSCREEN_COMMAND_TIMEOUT", get("MXSCREEN_COMMAND_TIMEOUT") ?? "", "a duration above 0");
  }
  if (config.stressTimeoutMs === 0 || config.stressTimeoutMs > config.commandTimeoutMs) {
    throw new ConfigError(
      "MXSCREEN_COMMAND_TIMEOUT_STRESS",
      get("MXSCREEN_COMMAND_TIMEOUT_STRESS") ?? "",
      `a duration above 0 and no longer than MXSCREEN_COMMAND_TIMEOUT (${config.commandTimeoutMs} ms)`,
    );
  }
  if (config.tarpit.maxMs > 60_000) {
    throw new ConfigError(
      "MXSCREEN_TARPIT_MAX",
      get("MXSCREEN_TARPIT_MAX") ?? "",
      "a duration of at most 1m (RFC 5321 4.5.3.2: a client waits 5 minutes for a reply; a tarpit must not make it give up)",
    );
  }
  if (config.dnsTimeoutMs === 0) throw new ConfigError("MXSCREEN_DNS_TIMEOUT", get("MXSCREEN_DNS_TIMEOUT") ?? "", "a duration above 0");
  if (config.banTtlMs === 0) throw new ConfigError("MXSCREEN_BAN_TTL", get("MXSCREEN_BAN_TTL") ?? "", "a duration above 0");
  if (!/^(file:|libsql:|https?:|wss?:)/.test(config.dbUrl)) {
    throw new ConfigError("MXSCREEN_DB_URL", config.dbUrl, "a libSQL URL: file:path, libsql://host, http://host:port");
  }
  if (config.adminUrl !== undefined && !/^https?:\/\/[^/\s]+\/?$/.test(config.adminUrl)) {
    throw new ConfigError(
      "MXSCREEN_ADMIN_URL",
      config.adminUrl,
      "the URL other nodes reach this node's admin API at, e.g. http://10.0.0.7:8025",
    );
  }
  if (config.dbSyncUrl !== undefined && !config.dbUrl.startsWith("file:")) {
    throw new ConfigError("MXSCREEN_DB_URL", config.dbUrl, "a file: URL when MXSCREEN_DB_SYNC_URL makes it an embedded replica");
  }
  return Object.freeze({ ...config, unknownVariables });
}

/** What each check does on this node, as `effectiveAction` applies it: what the estimate of enforcing shows beside each check. */
function effectiveActions(actions: Readonly<Record<CheckId, CheckAction>>, observe: boolean): Record<CheckId, EffectiveAction> {
  return Object.fromEntries(CHECKS.map((check) => [check.id, effectiveAction(check, actions, observe)])) as Record<
    CheckId,
    EffectiveAction
  >;
}
