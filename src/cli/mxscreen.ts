import { hostname } from "node:os";
import process from "node:process";
import { loadConfig } from "../config/config.ts";
import { ConfigError } from "../config/values.ts";
import { parseIP, parsePrefix } from "../ip/address.ts";
import { explain } from "../store/explain.ts";
import { checkAddress, checkListRequest } from "../store/list-input.ts";
import { migrate } from "../store/migrate.ts";
import { fleetStats } from "../store/stats.ts";
import { Store } from "../store/store.ts";
import type { ListChangeRow } from "../store/types.ts";
import { openFilesLimit, USUAL_OPEN_FILES } from "../net/open-files.ts";

const USAGE = `usage: mxscreen COMMAND [--json]

  ban add IP|CIDR [--ttl 1d|never] [--reason TEXT] [--force]
                                                     ban on every node sharing the store
                                                     (--force: confirm a prefix wider than /8, IPv6 /16)
  ban rm IP|CIDR                                     lift a ban
  ban ls                                             bans in force
  allow add IP|CIDR [--ttl DURATION] [--reason TEXT] [--force]
                                                     never screen or ban these clients
  allow rm IP|CIDR
  allow ls
  stats                                              the fleet's numbers, last hour
  explain IP                                         every verdict about IP, with the evidence
  migrate                                            apply the database migrations

The store is the one in MXSCREEN_DB_URL (and .env), as for the server.`;

/** Bad input: exit 2 with one line; `showUsage` when the command itself was not understood. */
class UsageError extends Error {
  constructor(message: string, readonly showUsage = false) {
    super(message);
  }
}

interface Parsed {
  readonly words: string[];
  readonly flags: Map<string, string | true>;
}

function parse(argv: string[]): Parsed {
  const words: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) {
      words.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s);
    if (name === "json" || name === "help" || name === "force") flags.set(name, true);
    else if (["ttl", "reason"].includes(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      flags.set(name, value);
    } else throw new UsageError(`unknown option --${name}`, true);
  }
  return { words, flags };
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return "(none)";
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? "")));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd();
  return [line(columns), ...cells.map(line)].join("\n");
}

function listRows(rows: ListChangeRow[]) {
  return rows.map((r) => ({
    prefix: r.prefix,
    expires: r.expires_at === null ? "never" : new Date(r.expires_at).toISOString(),
    node: r.node,
    check: r.check_id ?? "",
    reason: r.reason ?? "",
    since: new Date(r.created_at).toISOString(),
  }));
}

async function run(argv: string[], print: (text: string) => void): Promise<number> {
  const { words, flags } = parse(argv);
  const json = flags.has("json");
  const [command, sub, target, ...extra] = words;
  if (!command || flags.has("help") || command === "help") {
    print(USAGE);
    return command ? 0 : 2;
  }
  const config = loadConfig(process.env, { hostname: hostname(), cpus: 1, openFiles: openFilesLimit() ?? USUAL_OPEN_FILES });
  const storeOptions = { url: config.dbUrl, authToken: config.dbAuthToken, syncUrl: config.dbSyncUrl, node: config.node, index: false };

  if (command === "migrate") {
    const { createClient } = await import("@libsql/client");
    const client = createClient({ url: config.dbUrl, authToken: config.dbAuthToken });
    try {
      const applied = await migrate(client);
      print(json ? JSON.stringify({ applied }) : applied.length === 0 ? "up to date" : `applied ${applied.join(", ")}`);
    } finally {
      client.close();
    }
    return 0;
  }
  if (command !== "ban" && command !== "allow" && command !== "stats" && command !== "explain") {
    throw new UsageError(`unknown command ${JSON.stringify(command)}`, true);
  }
  const store = await Store.open(storeOptions, () => {});
  try {
    const now = Date.now();
    if (command === "stats") {
      const stats = await fleetStats(store.db, now);
      if (json) print(JSON.stringify(stats, null, 2));
      else {
        print(`in force: ${stats.lists.ban} bans, ${stats.lists.pass} passes, ${stats.lists.allow} allow entries`);
        print(`\nverdicts, last hour (fleet):\n${table(Object.entries(stats.events).map(([event, n]) => ({ event, n })), ["event", "n"])}`);
        print(`\ntop offenders, last hour:\n${table(stats.topOffenders.map((o) => ({ ...o, last: new Date(o.last).toISOString() })), ["ip", "events", "lastEvent", "last"])}`);
        print(`\nnodes:\n${table(stats.nodes.map((n) => ({ ...n, lastSeen: new Date(n.lastSeen).toISOString() })), ["name", "runtime", "listen", "lastSeen"])}`);
      }
      return 0;
    }
    if (command === "explain") {
      const ip = parseIP(sub ?? "");
      if (!ip) throw new UsageError(`explain: ${JSON.stringify(sub ?? "")} is not an IP address`);
      const result = await explain(store.db, ip);
      if (json) print(JSON.stringify(result, null, 2));
      else {
        print(`verdicts about ${result.ip}:\n${table(result.events.map((e) => ({ ...e, at: new Date(e.at).toISOString(), evidence: JSON.stringify(e.evidence) })), ["at", "node", "event", "check", "action", "evidence"])}`);
        print(`\nlist entries covering ${result.ip}:\n${table(result.lists.map((l) => ({ ...l, at: new Date(l.at).toISOString(), expires: l.expiresAt === null ? "never" : new Date(l.expiresAt).toISOString() })), ["at", "kind", "prefix", "op", "expires", "node", "check", "reason"])}`);
      }
      return 0;
    }
    const kind = command;
    if (sub === "ls") {
      const rows = listRows(await store.list(kind, now));
      print(json ? JSON.stringify(rows, null, 2) : table(rows, ["prefix", "expires", "node", "check", "reason", "since"]));
      return 0;
    }
    if (sub !== "add" && sub !== "rm") throw new UsageError(`${kind}: expected add, rm or ls`, true);
    if (extra.length > 0) throw new UsageError(`${kind} ${sub}: unexpected ${JSON.stringify(extra.join(" "))}`);
    if (sub === "add") {
      const checked = checkListRequest(
        { address: target, ttl: flags.get("ttl"), reason: flags.get("reason"), force: flags.get("force") },
        kind === "ban" ? config.banTtlMs : null,
        "--force",
      );
      if (!checked.ok) throw new UsageError(`${kind} add: ${checked.error}`);
      const entry = store.set(kind, checked.value, now);
      await written(store, config.dbUrl);
      print(json ? JSON.stringify(entry) : `${kind === "ban" ? "banned" : "allowed"} ${entry.prefix} until ${entry.expiresAt === null ? "removed" : new Date(entry.expiresAt).toISOString()}`);
    } else {
      const checked = checkAddress(target);
      if (!checked.ok) throw new UsageError(`${kind} rm: ${checked.error}`);
      store.remove(kind, parsePrefix(checked.value)!, now, "removed with the CLI");
      await written(store, config.dbUrl);
      print(json ? JSON.stringify({ removed: checked.value }) : `removed ${checked.value} from the ${kind} list`);
    }
    return 0;
  } finally {
    await store.close(0);
  }
}

async function written(store: Store, url: string): Promise<void> {
  if (!(await store.flush(10_000))) {
    throw new Error(`could not write to the store at ${url}: ${store.health().lastError ?? "no answer"}; nothing was changed`);
  }
}

run(process.argv.slice(2), (text) => console.log(text)).then(
  (code) => process.exit(code),
  (error) => {
    if (error instanceof UsageError) {
      console.error(error.showUsage ? `mxscreen: ${error.message}\n\n${USAGE}` : `mxscreen: ${error.message}`);
      process.exit(2);
    }
    console.error(`mxscreen: ${error instanceof ConfigError ? error.message : (error as Error).message}`);
    process.exit(error instanceof ConfigError ? 2 : 1);
  },
);
