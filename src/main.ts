import { hostname } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { type Config, loadConfig } from "./config/config.ts";
import { ConfigError } from "./config/config-error.ts";
import { adminApp } from "./admin/app.ts";
import { Metrics } from "./metrics/metrics.ts";
import { Spool } from "./delivery/spool.ts";
import { createDnsClient, type DnsObserver } from "./dns/resolver.ts";
import { forwardConfirmedReverse } from "./dns/fcrdns.ts";
import { allowedByName } from "./gate/allow-by-name.ts";
import type { IP } from "./ip/address.ts";
import { AcceptLoop } from "./gate/accept-loop.ts";
import { DnsblLookups } from "./dnsbl/index.ts";
import { Concluder } from "./gate/conclude.ts";
import { bugFields } from "./log/bug.ts";
import { createLogger, type Logger } from "./log/logger.ts";
import { batchedLines } from "./log/batched-lines.ts";
import { runtimeName } from "./net/runtime/which-runtime.ts";
import { CertificateFiles } from "./net/certificate-files.ts";
import { serve } from "./net/runtime/serve.ts";
import { FleetCounters } from "./store/fleet-counters.ts";
import { ClientRates } from "./gate/client-rates.ts";
import { registerFleetMetrics } from "./admin/fleet-metrics.ts";
import { Every, FOLLOW_TABLES_MS } from "./store/every.ts";
import { GreylistStore } from "./greylist/index.ts";
import { HarvestWindow, reportHarvest } from "./harvest/index.ts";
import { Store } from "./store/store.ts";
import { createPool } from "../workers/pool.ts";
import { runnerConfig } from "../workers/runner-config.ts";
import { Nudges } from "./cluster/nudges.ts";
import { Siblings } from "./cluster/siblings.ts";
import { openFilesLimit, USUAL_OPEN_FILES } from "./net/open-files.ts";
import { bigMemory } from "./net/runtime/memory.ts";
import { VERSION } from "./version.ts";

/** Past MXSCREEN_MAX_CONNECTIONS, room for the `421` replies and for allowed clients, which are not counted. */
const LISTENER_HEADROOM = 64;
const CERTIFICATE_CHECK_MS = 5_000;
/** RFC 5321 4.5.3.2.6: a client waits 10 minutes for the answer to its final `.`. */
const RFC5321_DATA_END_MS = 10 * 60_000;

/**
 * The last line of defence: an error nothing handled is a bug of ours. It is logged with its
 * stack as a BUG line and the process goes on serving everyone else; every session's own errors
 * are handled where they happen (workers/session-runner.ts), so this fails no client.
 */
function guardProcess(logger: Logger): void {
  const bug = (kind: string) => (error: unknown) => logger.note("error", `BUG: ${kind}, please report it`, bugFields(error));
  process.on("unhandledRejection", bug("unhandled rejection"));
  process.on("uncaughtException", bug("uncaught exception"));
}

function readConfig(openFiles: number): Config {
  try {
    return loadConfig(process.env, { hostname: hostname(), cpus: navigator.hardwareConcurrency ?? 1, openFiles });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`mxscreen: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
}

/** A DNSBL lookup counts as any lookup, and by its zone: a slow or failing list shows by name. */
function observeDnsbl(config: Config, observeDns: DnsObserver, metrics: Metrics): DnsObserver {
  return (type, status, seconds, name) => {
    observeDns(type, status, seconds, name);
    const site = config.checks.dnsbl.find((entry) => name.endsWith(`.${entry.zone}`));
    if (site) metrics.observe("mxscreen_dnsbl_lookup_seconds", seconds, { zone: site.zone, status });
  };
}

/** The `.domain` entries of MXSCREEN_ALLOW as a lookup of the client's forward-confirmed name. */
function allowByName(config: Config, observeDns: DnsObserver): ((ip: IP) => Promise<string | undefined>) | undefined {
  if (config.allowDomains.length === 0) return undefined;
  const dns = createDnsClient(config.dns, config.dnsTimeoutMs, observeDns);
  return (ip) => forwardConfirmedReverse(dns, ip).then((reverse) => allowedByName(reverse, config.allowDomains));
}

/** The local copy of the lists lives beside the write queue, in the node's data directory; its processes share it. */
function localCopyPath(queueFile: string): string {
  return join(dirname(queueFile), "lists-copy.bin");
}

/** The admin host other nodes can reach: an address listening on every interface stands for the host's name. */
function advertised(host: string, hostname: string): string {
  if (host === "0.0.0.0" || host === "::" || host === "") return hostname;
  return host.includes(":") ? `[${host}]` : host;
}

async function main(): Promise<void> {
  const knownOpenFiles = openFilesLimit();
  const openFiles = knownOpenFiles ?? USUAL_OPEN_FILES;
  const config = readConfig(openFiles);
  const lines = batchedLines((text) => console.log(text));
  // process.exit runs the exit handlers: the lines of the last turn (`stopped`, a fatal error's) are written.
  process.on("exit", () => lines.flush());
  const logger: Logger = createLogger(config.log, config.node, lines.line);
  guardProcess(logger);
  const startedAt = Date.now();
  const sibling = config.processIndex > 0;
  // Each process keeps its own journal of writes that could not reach the database.
  const queueFile = sibling ? `${config.queueFile}.${config.processIndex}` : config.queueFile;
  const store = await Store.open(
    {
      url: config.dbUrl,
      authToken: config.dbAuthToken,
      syncUrl: config.dbSyncUrl,
      node: config.node,
      queueFile,
      timeoutMs: config.dbTimeoutMs,
      replicaSyncMs: config.replicaSyncIntervalMs,
      localCopy: localCopyPath(config.queueFile),
      memory: await bigMemory(),
      // Housekeeping is one process's job: the first of the node's.
      retention: sibling ? undefined : config.retention,
    },
    (error) => logger.note("warn", error.message),
  );
  if (knownOpenFiles === undefined) {
    logger.note("warn", `cannot read the open-files limit (ulimit -n; on Deno run with --allow-run): assuming ${USUAL_OPEN_FILES}`, {
      max_connections: config.connectionLimits.total,
    });
  }
  if (config.upstream && config.upstream.dataEndTimeoutMs < RFC5321_DATA_END_MS) {
    logger.note(
      "warn",
      "MXSCREEN_UPSTREAM_DATA_TIMEOUT is below RFC 5321's 10 minutes: a sender may retry a message the upstream accepted",
      {
        data_timeout_ms: config.upstream.dataEndTimeoutMs,
      },
    );
  }
  if (config.hostnameUnqualified) {
    logger.note(
      "warn",
      "the banner name is not fully qualified: set MXSCREEN_HOSTNAME to this MX's public name, the one its MX and PTR records name (e.g. mx1.example.net)",
      {
        hostname: config.hostname,
        from: config.hostnameUnqualified,
      },
    );
  }
  for (const variable of config.unknownVariables) {
    logger.note("warn", "unknown setting ignored: check its spelling against the README", { variable });
  }
  const metrics = new Metrics();
  const observeDns: DnsObserver = (type, status, seconds) => metrics.observe("mxscreen_dns_lookup_seconds", seconds, { type, status });
  await new Spool(config.spoolDir, process.pid).prepare();
  const certificates = config.tls ? new CertificateFiles(config.tls.certPath, config.tls.keyPath) : undefined;
  const reloaded = (error: string | undefined) =>
    error
      ? logger.note("error", `TLS certificate not reloaded, still using the previous one: ${error}`)
      : logger.note("info", "TLS certificate reloaded");
  certificates?.watch(CERTIFICATE_CHECK_MS, reloaded);
  const pool = createPool(runnerConfig(config, certificates !== undefined), config.workers, {
    observeDns,
    onWorkerFailed: (reason, sessions) =>
      logger.note("error", "a session worker died and was replaced; its clients were told 421 4.3.0", { reason, sessions }),
    onNote: (level, message) => logger.note(level, message),
    onBug: ({ event: _, ...fields }) => logger.note("error", "BUG: unhandled rejection in a session worker, please report it", fields),
  });
  const concluder = new Concluder(config, logger, store, metrics);
  const dnsbl = config.checks.dnsbl.length === 0 ? undefined : new DnsblLookups(
    config.checks.dnsbl,
    createDnsClient(config.dns, config.dnsTimeoutMs, observeDnsbl(config, observeDns, metrics)),
    logger,
  );
  dnsbl?.startProbing();
  const warn = (error: Error) => logger.note("warn", error.message);
  const passTtls = { greetMs: config.passTtlMs, protocolMs: config.protocolPassTtlMs };
  const counterWriter = config.processes > 1 ? `${config.node}/${config.processIndex + 1}` : config.node;
  const counters = new FleetCounters(store, warn, config.countersIntervalMs, counterWriter);
  const badRecipientCounters = {
    perPrefix: counters.counter("bad-rcpt-prefix", config.badRecipientWindow.windowMs),
    perDomain: counters.counter("bad-rcpt-domain", config.badRecipientWindow.windowMs),
  };
  const harvest = new HarvestWindow(
    config.harvest,
    { perDomain: badRecipientCounters.perDomain, perClient: counters.counter("bad-rcpt-client", config.badRecipientWindow.windowMs) },
    reportHarvest(logger, metrics, config.harvest.threshold),
  );
  counters.listen("bad-rcpt-domain", (domain, now) => harvest.heardDomain(domain, now));
  counters.listen("bad-rcpt-client", (address) => harvest.heardClient(address));
  await counters.start();
  // Greylisting only for a harvest (MXSCREEN_GREYLIST off) follows the fleet's triplets once one begins.
  const greylist = config.greylist === undefined
    ? undefined
    : config.checks.greylist
    ? await GreylistStore.open(store, config.greylist, warn)
    : GreylistStore.lazy(store, config.greylist, warn);
  registerFleetMetrics(metrics, counters, greylist);
  const loop = new AcceptLoop(
    {
      gate: {
        hostname: config.hostname,
        greetWaitMs: config.greetWaitMs,
        greetWaitStressMs: config.greetWaitStressMs,
        banAction: config.banAction,
        banEndsSessions: config.banEndsSessions,
        actions: config.checkActions,
        checks: config.checks,
        observe: config.mode === "observe",
      },
      listen: config.listen,
      allow: config.allow,
      trustedProxies: config.trustedProxies,
      allowByName: allowByName(config, observeDns),
      tls: certificates ? () => certificates.current : undefined,
      dnsbl,
      listenerCap: Math.max(1, Math.min(openFiles - 8, config.connectionLimits.total + LISTENER_HEADROOM)),
      openFiles,
      reusePort: config.processes > 1,
      stressConnections: config.stressConnections,
      limits: config.connectionLimits,
      badRecipientWindow: config.badRecipientWindow,
      badRecipientCounters,
      greylist,
      rates: new ClientRates(config.checks, (name, windowMs) => counters.counter(name, windowMs)),
      passTtls,
      harvest,
      tarpitSessions: config.tarpit.sessions,
    },
    store,
    pool,
    concluder,
    logger,
    metrics,
  );
  const listeners = await loop.start();
  const siblings = !sibling && config.processes > 1 ? new Siblings(config.processes - 1, logger) : undefined;
  siblings?.start();
  const listen = listeners.map((l) => `${l.host.includes(":") ? `[${l.host}]` : l.host}:${l.port}`).join(",");
  metrics.gauge("mxscreen_open_connections", "Client connections open now.", () => loop.connections);
  metrics.gauge(
    "mxscreen_harvest_domains",
    "Recipient domains under harvest across the fleet now (MXSCREEN_HARVEST_THRESHOLD).",
    () => harvest.harvested,
  );
  metrics.gauge(
    "mxscreen_stress",
    "1 while this process is under stress and the greet wait is MXSCREEN_GREET_WAIT_STRESS.",
    () => (loop.stressed ? 1 : 0),
  );
  if (siblings) {
    metrics.gauge(
      "mxscreen_processes",
      "Processes listening on the SMTP ports, this one included (MXSCREEN_PROCESSES).",
      () => 1 + siblings.running,
    );
  }
  metrics.gauge("mxscreen_store_queue_length", "Writes waiting for the database.", () => store.health().length);
  metrics.gauge(
    "mxscreen_store_queue_memory_only",
    "Writes waiting in memory only, because the journal (MXSCREEN_QUEUE_FILE) cannot be written.",
    () => store.health().memoryOnly,
  );
  if (dnsbl) {
    metrics.gauge(
      "mxscreen_dnsbl_zone_healthy",
      "1 while a DNSBL/DNSWL zone's answers count; 0 while it answers with error codes or lists 127.0.0.1.",
      () => dnsbl.zoneHealth().map(({ zone, healthy }) => [{ zone }, healthy ? 1 : 0] as const),
    );
  }
  metrics.gauge(
    "mxscreen_store_reachable",
    "1 when the last contact with the database succeeded.",
    () => (store.health().reachable ? 1 : 0),
  );
  const app = adminApp({
    store,
    metrics,
    token: config.adminToken,
    allow: config.allow,
    banTtlMs: config.banTtlMs,
    passTtls,
    listening: () => loop.listening && (siblings === undefined || siblings.running === config.processes - 1),
    openConnections: () => loop.connections,
    maxConnections: config.connectionLimits.total,
    observe: { ...config.observe, dnswlThreshold: config.checks.dnswlThreshold },
  });
  // Each process of MXSCREEN_PROCESSES serves its own metrics: the Nth on the admin port + N.
  const adminAddress = config.adminListen && {
    host: config.adminListen.host,
    port: config.adminListen.port === 0 ? 0 : config.adminListen.port + config.processIndex,
  };
  const admin = adminAddress === undefined ? undefined : await serve(
    (request, peer) => app.fetch(request, peer),
    adminAddress.host,
    adminAddress.port,
  ).catch((error) => {
    throw new Error(`cannot serve the admin API on ${adminAddress.host}:${adminAddress.port}: ${(error as Error).message}`, {
      cause: error,
    });
  });
  const adminUrl = admin && (config.adminUrl ?? `http://${advertised(admin.host, config.hostname)}:${admin.port}`);
  const nudges = new Nudges(config.node, config.adminToken, warn);
  const peers = adminUrl === undefined
    ? undefined
    : new Every("reading the other nodes' admin URLs", FOLLOW_TABLES_MS, () => nudges.readPeers(store.db), warn);
  store.onListWritten(() => void nudges.send());
  store.follow({ fastMs: config.followIntervalMs, idleMs: config.followIdleIntervalMs }, {
    runtime: runtimeName(),
    listen,
    startedAt,
    adminUrl,
  });
  await peers?.start();
  logger.note("info", "mxscreen started", {
    runtime: runtimeName(),
    version: VERSION,
    listen,
    admin: admin ? `${admin.host.includes(":") ? `[${admin.host}]` : admin.host}:${admin.port}` : "off",
    db: config.dbUrl.replace(/\/\/[^@/]*@/, "//***@"),
    delivery: config.upstream
      ? `relay:${config.upstream.host}:${config.upstream.port} (${config.upstream.identity})`
      : `spool:${config.spoolDir}`,
    starttls: certificates ? "offered" : "off",
    workers: config.workers,
    process: config.processes > 1 ? `${config.processIndex + 1}/${config.processes}` : undefined,
    pid: process.pid,
    mode: config.mode,
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.note("info", "stopping", { signal, open: loop.connections });
    loop.stop();
    certificates?.close();
    dnsbl?.stop();
    await Promise.all([pool.shutdown(config.shutdownTimeoutMs), siblings?.stop(config.shutdownTimeoutMs + 5_000)]);
    await admin?.close();
    await Promise.all([peers?.stop(), greylist?.stop(), counters.stop()]);
    await store.close();
    logger.note("info", "stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGHUP", () => {
    if (certificates) reloaded(certificates.reload());
    siblings?.signal("SIGHUP");
  });
  process.on("SIGINT", () => void stop("SIGINT"));
  if (sibling) {
    // stdin is a pipe from the first process: it closes when that process is gone, however it ended.
    process.stdin.on("end", () => void stop("first process gone"));
    process.stdin.on("error", () => void stop("first process gone"));
    process.stdin.resume();
  }
}

main().catch((error) => {
  console.error(`mxscreen: ${(error as Error).message}`);
  process.exit(1);
});
