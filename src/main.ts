import { hostname } from "node:os";
import process from "node:process";
import { type Config, loadConfig } from "./config/config.ts";
import { ConfigError } from "./config/values.ts";
import { Spool } from "./delivery/spool.ts";
import { createDnsClient } from "./dns/resolver.ts";
import { AcceptLoop } from "./gate/accept-loop.ts";
import { DnsblLookups } from "./gate/dnsbl-lookups.ts";
import { Concluder } from "./gate/conclude.ts";
import { createLogger, type Logger } from "./log/logger.ts";
import { runtimeName } from "./net/runtime.ts";
import { GreylistStore } from "./store/greylist.ts";
import { Store } from "./store/store.ts";
import { createPool } from "../workers/pool.ts";

/** Below the 20,000 open files a process may hold here, with room for the store, spool and workers. */
const MAX_CONNECTIONS = 19_000;
const FOLLOW_INTERVAL_MS = 500;

function readConfig(): Config {
  try {
    return loadConfig(process.env, { hostname: hostname(), cpus: navigator.hardwareConcurrency ?? 1 });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`mxscreen: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  const logger: Logger = createLogger(config.log, config.node, (line) => console.log(line));
  const store = await Store.open(
    { url: config.dbUrl, authToken: config.dbAuthToken, syncUrl: config.dbSyncUrl, node: config.node },
    (error) => logger.note("error", error.message),
  );
  for (const variable of config.unknownVariables) {
    logger.note("warn", "unknown setting ignored: check its spelling against the README", { variable });
  }
  store.follow(FOLLOW_INTERVAL_MS);
  await new Spool(config.spoolDir, process.pid).prepare();
  const pool = createPool({
    spoolDir: config.spoolDir,
    dns: { server: config.dns, timeoutMs: config.dnsTimeoutMs },
    session: {
      hostname: config.hostname,
      maxMessageSize: config.maxMessageSize,
      maxLineLength: config.maxLineLength,
      maxRecipients: config.maxRecipients,
      commandTimeoutMs: config.commandTimeoutMs,
      dataTimeoutMs: config.dataTimeoutMs,
      pipelining: config.pipelining,
      acceptDomains: config.acceptDomains,
      checks: config.checks,
      actions: config.checkActions,
      observe: config.mode === "observe",
      ehloRefusal: config.ehloRefusal,
      greylist: config.greylist !== undefined,
    },
  }, config.workers);
  const concluder = new Concluder(config, logger, store);
  const dnsbl = config.checks.dnsbl.length === 0
    ? undefined
    : new DnsblLookups(config.checks.dnsbl, createDnsClient(config.dns, config.dnsTimeoutMs), logger);
  dnsbl?.startProbing();
  const loop = new AcceptLoop({
    gate: {
      hostname: config.hostname,
      greetWaitMs: config.greetWaitMs,
      banAction: config.banAction,
      pregreetAction: config.pregreetAction,
      observe: config.mode === "observe",
    },
    listen: config.listen,
    allow: config.allow,
    dnsbl,
    maxConnections: MAX_CONNECTIONS,
    limits: config.connectionLimits,
    connectionLimitAction: config.connectionLimitAction,
    badRecipientWindow: config.badRecipientWindow,
    dictionaryAction: config.checkActions["dictionary"],
    greylist: config.greylist === undefined ? undefined : new GreylistStore(store.db, config.node, config.greylist, (error) => logger.note("error", error.message)),
  }, store, pool, concluder, logger);
  const listeners = await loop.start();
  logger.note("info", "mxscreen started", {
    runtime: runtimeName(),
    listen: listeners.map((l) => `${l.host.includes(":") ? `[${l.host}]` : l.host}:${l.port}`).join(","),
    db: config.dbUrl.replace(/\/\/[^@/]*@/, "//***@"),
    delivery: `spool:${config.spoolDir}`,
    workers: config.workers,
    mode: config.mode,
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.note("info", "stopping", { signal, open: loop.connections });
    loop.stop();
    dnsbl?.stop();
    await pool.shutdown(config.shutdownTimeoutMs);
    await store.close();
    logger.note("info", "stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((error) => {
  console.error(`mxscreen: ${(error as Error).message}`);
  process.exit(1);
});
