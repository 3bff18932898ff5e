import { Buffer } from "node:buffer";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import process from "node:process";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { entryJson, explanationJson, type ListEntryJson, rowJson } from "../admin/list-entry.ts";
import { loadConfig } from "../config/config.ts";
import { ConfigError } from "../config/config-error.ts";
import { formatPrefix, parseIP, parsePrefix } from "../ip/address.ts";
import { runtimeName } from "../net/runtime/which-runtime.ts";
import { explain } from "../store/explain.ts";
import { checkAddress, checkListRequest } from "../store/list-input.ts";
import { readListFile } from "../store/list-file.ts";
import { ImportError, importList, type ImportProgress, type ImportReport } from "../store/list-import.ts";
import { migrate } from "../store/migrate.ts";
import { fleetStats } from "../store/stats.ts";
import { describeRate } from "../store/observe-estimate.ts";
import type { ObservedChecks } from "../store/observed-checks.ts";
import { durationText } from "../config/duration.ts";
import { Store } from "../store/store.ts";
import { Nudges } from "../cluster/nudges.ts";
import type { ListKind } from "../store/types.ts";
import { openFilesLimit, USUAL_OPEN_FILES } from "../net/open-files.ts";
import { VERSION } from "../version.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Options every command takes: output for scripts, and the remote mode. */
const COMMON: Options = {
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  server: { type: "string" },
  token: { type: "string" },
};
const LIST_ADD: Options = { ttl: { type: "string" }, reason: { type: "string" }, force: { type: "boolean" } };

interface Command {
  readonly name: string;
  readonly args: string;
  readonly summary: string;
  readonly details?: string;
  readonly options: Options;
  /** Positional arguments after the command's name: how many it needs, at most. */
  readonly arity: number;
  /** Needs the store directly (no --server). */
  readonly localOnly?: boolean;
}

/** add, rm and ls for one list: the ban and allow commands differ only in words and defaults. */
function listCommands(kind: "ban" | "allow", ttl: string, summary: string, ttlDefault: string): Command[] {
  return [
    {
      name: `${kind} add`,
      args: `IP|CIDR [--ttl ${ttl}] [--reason TEXT] [--force]`,
      summary,
      details: `${ttlDefault}; --force confirms a prefix wider than an IPv4 /8 or an IPv6 /16.`,
      options: LIST_ADD,
      arity: 1,
    },
    {
      name: `${kind} import`,
      args: `FILE|- [--ttl ${ttl}] [--reason TEXT] [--force]`,
      summary: `add every address or prefix of a file (- for stdin) to the ${kind} list`,
      details:
        `One address or CIDR a line, then an optional reason; # comments; Postfix postscreen_access_list lines (192.0.2.0/24 reject, permit) ` +
        `go to the ban and allow lists. --ttl and --reason apply to every line (${ttlDefault.toLowerCase()}); --force confirms wide prefixes line by line. ` +
        "Prints what was added, what was present already, and each refused line with its number; exits 1 when a line was refused.",
      options: LIST_ADD,
      arity: 1,
    },
    { name: `${kind} rm`, args: "IP|CIDR", summary: `remove from the ${kind} list (exit 1 when it was not there)`, options: {}, arity: 1 },
    { name: `${kind} ls`, args: "", summary: `${kind} entries in force`, options: {}, arity: 0 },
  ];
}

const COMMANDS: readonly Command[] = [
  ...listCommands(
    "ban",
    "1d|never",
    "ban on every node sharing the store",
    "--ttl defaults to MXSCREEN_BAN_TTL (the server's, with --server)",
  ),
  ...listCommands("allow", "DURATION", "never screen or ban these clients", "No end unless --ttl"),
  { name: "stats", args: "", summary: "the fleet's numbers, last hour", options: {}, arity: 0 },
  { name: "explain", args: "IP", summary: "every verdict about IP, with the evidence", options: {}, arity: 1 },
  { name: "migrate", args: "", summary: "apply the database migrations", options: {}, arity: 0, localOnly: true },
  {
    name: "config",
    args: "[--all]",
    summary: "the settings in effect, as postconf -n shows Postfix's (secrets masked)",
    details: "Checks every value as the server does at start (a bad one exits 2). --all adds the settings left at their defaults.",
    options: { all: { type: "boolean" } },
    arity: 0,
    localOnly: true,
  },
];

const REMOTE = `Remote mode: --server http://mx1.example:8025 (or MXSCREEN_SERVER) talks to a node's admin API
with --token or MXSCREEN_ADMIN_TOKEN, so no database credentials are needed; without it the
CLI works on the store in MXSCREEN_DB_URL (and .env), as the server does.`;

function usage(): string {
  const lines = COMMANDS.map((c) => {
    const form = `${c.name} ${c.args}`.trimEnd();
    return form.length > 50 ? `  ${form}\n  ${"".padEnd(50)} ${c.summary}` : `  ${form.padEnd(50)} ${c.summary}`;
  });
  return `usage: mxscreen COMMAND [--json] [--server URL [--token TOKEN]]\n       mxscreen --version | help [COMMAND]\n\n${
    lines.join("\n")
  }\n\n${REMOTE}`;
}

function commandHelp(command: Command): string {
  const options = Object.keys({ ...command.options, ...COMMON }).map((o) => `--${o}`).join(" ");
  return `usage: mxscreen ${command.name} ${command.args}\n\n${command.summary}.${
    command.details ? `\n${command.details}` : ""
  }\n\noptions: ${options}\n${command.localOnly ? "Works on the store in MXSCREEN_DB_URL only (not with --server)." : REMOTE}`;
}

/** Bad input: exit 2 with one line; `help` is shown after it when the command was not understood. */
class UsageError extends Error {
  constructor(message: string, readonly help?: string) {
    super(message);
  }
}

/** What went wrong elsewhere (the store, the server): exit 1. */
class Failure extends Error {}

/** The command named by the leading words of `positionals`, longest name first. */
function findCommand(positionals: readonly string[]): Command | undefined {
  return COMMANDS.find((c) => c.name.split(" ").every((word, i) => positionals[i] === word));
}

/** node:util's messages name the option; ours say what to do as well. */
function parseError(error: unknown, command: Command): UsageError {
  const message = (error as Error).message;
  const option = /'(-[^' ]+)/.exec(message)?.[1];
  const code = (error as { code?: string }).code ?? "";
  if (/MISSING|INVALID_OPTION_VALUE/.test(code) || /argument missing/.test(message)) return new UsageError(`${option} needs a value`);
  if (/UNKNOWN_OPTION/.test(code) || /Unknown option/.test(message)) {
    return new UsageError(`${command.name}: unknown option ${option}`, commandHelp(command));
  }
  return new UsageError(`${command.name}: ${message}`, commandHelp(command));
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return "(none)";
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? "")));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd();
  return [line(columns), ...cells.map(line)].join("\n");
}

/** What enforcing each check in `ignore` or `observe` would cost (README: Observe before you enforce). */
function observedTable(o: ObservedChecks): string {
  const rows = o.checks.map((c) => ({
    ...c,
    action: c.action ?? "?",
    "false positives if enforced": describeRate(c),
    hits: c.sampled ? `${c.hits} (newest)` : c.hits,
  }));
  return `what enforcing would cost, checks in ignore or observe (hits from ${durationText(o.windowMs)} to ${
    durationText(o.retryWindowMs)
  } ago; a 4xx not followed by a delivery within ${durationText(o.retryWindowMs)} counts as a bot):\n${
    table(rows, ["check", "action", "clients", "hits", "legitimate", "bot", "unknown", "false positives if enforced"])
  }`;
}

function entryTable(entries: readonly ListEntryJson[]): string {
  const rows = entries.map((e) => ({
    ...e,
    expires: e.expiresAt ?? "never",
    since: e.createdAt,
    check: e.check ?? "",
    reason: e.reason ?? "",
  }));
  return table(rows, ["prefix", "expires", "node", "check", "reason", "since"]);
}

type ExplainJson = ReturnType<typeof explanationJson>;
type ImportRequest = { readonly ttl?: string; readonly reason?: string; readonly force?: boolean };
type FleetStats = Awaited<ReturnType<typeof fleetStats>>;

/** What a command does, the same whether it reaches the store directly or a node's admin API. */
interface Backend {
  list(kind: ListKind): Promise<ListEntryJson[]>;
  add(kind: ListKind, request: { address?: string; ttl?: string; reason?: string; force?: boolean }): Promise<ListEntryJson>;
  /** False when the list had no such entry. */
  remove(kind: ListKind, address: string): Promise<boolean>;
  import(kind: "ban" | "allow", text: string, options: ImportRequest, progress: ImportProgress): Promise<ImportReport>;
  explain(ip: string): Promise<ExplainJson>;
  stats(): Promise<FleetStats>;
  close(): Promise<void>;
}

async function localBackend(): Promise<Backend> {
  const config = loadConfig(process.env, { hostname: hostname(), cpus: 1, openFiles: openFilesLimit() ?? USUAL_OPEN_FILES });
  const store = await Store.open({
    url: config.dbUrl,
    authToken: config.dbAuthToken,
    syncUrl: config.dbSyncUrl,
    node: config.node,
    index: false,
    timeoutMs: config.dbTimeoutMs,
  }, () => {});
  // The nodes would read the change at their next poll; nudged, they read it now. Best effort:
  // a node this side cannot reach (or whose token differs) keeps its poll.
  const nudges = new Nudges(undefined, config.adminToken, () => {});
  const nudge = () => nudges.readPeers(store.db).then(() => nudges.send(), () => {});
  const written = async () => {
    if (!(await store.flush(10_000))) {
      throw new Failure(`could not write to the store at ${config.dbUrl}: ${store.health().lastError ?? "no answer"}; nothing was changed`);
    }
    await nudge();
  };
  return {
    list: async (kind) => (await store.list(kind, Date.now())).map(rowJson),
    add: async (kind, request) => {
      const checked = checkListRequest(request, kind === "ban" ? config.banTtlMs : null, "--force");
      if (!checked.ok) throw new UsageError(`${kind} add: ${checked.error}`);
      const entry = store.set(kind, checked.value, Date.now());
      await written();
      return entryJson(entry);
    },
    remove: async (kind, address) => {
      const checked = checkAddress(address);
      if (!checked.ok) throw new UsageError(`${kind} rm: ${checked.error}`);
      const prefix = parsePrefix(checked.value)!;
      if (!(await store.list(kind, Date.now())).some((row) => row.prefix === formatPrefix(prefix))) return false;
      store.remove(kind, prefix, Date.now(), "removed with the CLI");
      await written();
      return true;
    },
    import: async (kind, text, request, progress) => {
      try {
        const report = await importList(store, readListFile(text), {
          kind,
          ...request,
          confirm: "--force",
          defaultTtlMs: { ban: config.banTtlMs, allow: null },
        }, progress);
        if (report.added > 0) await nudge();
        return report;
      } catch (error) {
        if (!(error instanceof ImportError)) throw error;
        throw new Failure(
          `${kind} import: the store at ${config.dbUrl} did not take a batch (${error.message}); lines up to ${error.report.lastLine} are in force, ${error.report.added} added`,
        );
      }
    },
    explain: async (text) => {
      const ip = parseIP(text);
      if (!ip) throw new UsageError(`explain: ${JSON.stringify(text)} is not an IP address`);
      return explanationJson(await explain(store.db, ip));
    },
    stats: () => fleetStats(store.db, Date.now(), { ...config.observe, dnswlThreshold: config.checks.dnswlThreshold }),
    close: () => store.close(0),
  };
}

function remoteBackend(server: string, token: string | undefined): Backend {
  const base = server.replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]+/.test(base)) {
    throw new UsageError(`--server ${JSON.stringify(server)} is not valid: expected the admin API's URL, e.g. http://mx1.example:8025`);
  }
  const call = async (what: string, path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (token) headers.set("authorization", `Bearer ${token}`);
    if (init.body && !headers.has("content-type")) headers.set("content-type", "application/json");
    let response: Response;
    try {
      response = await fetch(base + path, { ...init, headers, signal: AbortSignal.timeout(15_000) });
    } catch (error) {
      throw new Failure(
        `${what}: cannot reach the admin API at ${base} (${
          (error as Error).message
        }); check --server and that MXSCREEN_ADMIN_LISTEN is reachable from here`,
      );
    }
    const body = await response.json().catch(() => ({})) as Record<string, unknown>;
    if (response.status === 400) throw new UsageError(`${what}: ${body.error}`);
    if (response.status === 401 || response.status === 403) {
      throw new Failure(
        `${what}: ${base} refused: ${
          body.error ?? response.status
        }; pass the node's MXSCREEN_ADMIN_TOKEN with --token or MXSCREEN_ADMIN_TOKEN`,
      );
    }
    if (response.status >= 500) throw new Failure(`${what}: ${base} answered ${response.status}: ${body.error ?? "no reason given"}`);
    return { status: response.status, body };
  };
  const path = (kind: ListKind) => kind === "ban" ? "/api/bans" : "/api/allow";
  return {
    list: async (kind) => (await call(`${kind} ls`, path(kind))).body[kind === "ban" ? "bans" : "allow"] as ListEntryJson[],
    add: async (kind, request) => {
      const { status, body } = await call(`${kind} add`, path(kind), { method: "POST", body: JSON.stringify(request) });
      if (status === 202) console.error(`mxscreen: ${kind} add: in force on ${base}, waiting there in its queue for the database`);
      return body[kind] as ListEntryJson;
    },
    remove: async (kind, address) =>
      (await call(`${kind} rm`, `${path(kind)}?address=${encodeURIComponent(address)}`, { method: "DELETE" })).status !== 404,
    import: async (kind, text, request, progress) => {
      let total: ImportReport = { added: 0, lists: { ban: 0, allow: 0 }, present: 0, refusedCount: 0, refused: [], lastLine: 0 };
      for (const chunk of logicalChunks(text, REMOTE_IMPORT_LINES)) {
        const query = new URLSearchParams({ line: String(chunk.firstLine) });
        for (const [name, value] of Object.entries(request)) if (value !== undefined) query.set(name, String(value));
        const { status, body } = await call(`${kind} import`, `${path(kind)}/import?${query}`, {
          method: "POST",
          body: chunk.text,
          headers: { "content-type": "text/plain" },
        });
        if (status !== 200) {
          throw new Failure(
            `${kind} import: ${base} answered ${status}: ${body.error ?? "no reason given"}; lines up to ${total.lastLine} are in force`,
          );
        }
        const part = body as unknown as ImportReport;
        total = {
          added: total.added + part.added,
          lists: { ban: total.lists.ban + part.lists.ban, allow: total.lists.allow + part.lists.allow },
          present: total.present + part.present,
          refusedCount: total.refusedCount + part.refusedCount,
          refused: [...total.refused, ...part.refused].slice(0, 1000),
          lastLine: chunk.lastLine,
        };
        progress(total);
      }
      return total;
    },
    explain: async (ip) => (await call("explain", `/api/explain/${encodeURIComponent(ip)}`)).body as unknown as ExplainJson,
    stats: async () => (await call("stats", "/api/stats")).body.fleet as FleetStats,
    close: () => Promise.resolve(),
  };
}

/** Lines per request in remote mode: each a few hundred kilobytes, so progress shows and no body is huge. */
const REMOTE_IMPORT_LINES = 20_000;

/** A list file cut into pieces of about `lines` lines, never inside a logical line (one continued by leading whitespace). */
function* logicalChunks(text: string, lines: number): Generator<{ text: string; firstLine: number; lastLine: number }> {
  const all = text.split("\n");
  for (let start = 0; start < all.length;) {
    let end = Math.min(all.length, start + lines);
    while (end < all.length && /^\s/.test(all[end]) && all[end].trim() !== "") end++;
    yield { text: all.slice(start, end).join("\n"), firstLine: start + 1, lastLine: end };
    start = end;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** What an import did, for a person: the counts, then the refused lines with their numbers. */
function importSummary(kind: string, report: ImportReport): string {
  const n = (value: number) => value.toLocaleString("en");
  const lists = report.lists.ban > 0 && report.lists.allow > 0
    ? ` (${n(report.lists.ban)} bans, ${n(report.lists.allow)} allow entries)`
    : "";
  const lines = [
    `${kind} import: ${n(report.added)} added${lists}, ${n(report.present)} already present, ${n(report.refusedCount)} refused`,
  ];
  for (const refused of report.refused.slice(0, SHOWN_REFUSALS)) {
    lines.push(`  line ${refused.line}: ${JSON.stringify(refused.text)}: ${refused.error}`);
  }
  if (report.refusedCount > SHOWN_REFUSALS) {
    lines.push(`  … and ${n(report.refusedCount - SHOWN_REFUSALS)} more (--json lists the first 1,000)`);
  }
  return lines.join("\n");
}

/** Refused lines a person sees at the end of an import; --json has more. */
const SHOWN_REFUSALS = 20;

const SECRET = /TOKEN|PASSWORD|SECRET|KEY$/;

/** A value as `mxscreen config` shows it: secrets and the password part of URLs masked. */
function shown(name: string, value: string): string {
  if (SECRET.test(name) && !name.endsWith("_FILE") && name !== "MXSCREEN_TLS_KEY") return "********";
  return value.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:********@").replace(/([?&](?:authToken|token)=)[^&]*/gi, "$1********");
}

/** postconf -n for mxscreen: each MXSCREEN_ setting in effect (environment and .env), checked as at start. */
function showConfig(all: boolean, json: boolean, print: (text: string) => void): void {
  const known = new Set<string>();
  const env = new Proxy(process.env, {
    get: (target, name) => {
      if (typeof name === "string" && name.startsWith("MXSCREEN_")) known.add(name);
      return Reflect.get(target, name);
    },
  });
  const config = loadConfig(env, {
    hostname: hostname(),
    cpus: navigator.hardwareConcurrency ?? 1,
    openFiles: openFilesLimit() ?? USUAL_OPEN_FILES,
  });
  const names = [...known].filter((name) => all || (process.env[name] ?? "").trim() !== "").sort();
  const settings = Object.fromEntries(
    names.map((
      name,
    ) => [name, process.env[name] === undefined || process.env[name]!.trim() === "" ? null : shown(name, process.env[name]!)]),
  );
  if (json) print(JSON.stringify({ settings, unknown: config.unknownVariables }, null, 2));
  else {
    for (const [name, value] of Object.entries(settings)) print(value === null ? `${name} = (default)` : `${name} = ${value}`);
  }
  for (const name of config.unknownVariables) {
    console.error(`mxscreen: ${name} is not a setting mxscreen knows (ignored): check its spelling against the README`);
  }
}

async function run(argv: string[], print: (text: string) => void): Promise<number> {
  if (argv[0] === "--version" || argv[0] === "-V") {
    print(`mxscreen ${VERSION} (${runtimeName()})`);
    return 0;
  }
  const words =
    parseArgs({ args: argv, options: { ...COMMON, ...LIST_ADD, all: { type: "boolean" } }, strict: false, allowPositionals: true })
      .positionals;
  if (words.length === 0 || words[0] === "help") {
    const about = findCommand(words.slice(1));
    print(about ? commandHelp(about) : usage());
    return words.length === 0 ? 2 : 0;
  }
  const command = findCommand(words);
  if (!command) {
    const group = COMMANDS.filter((c) => c.name.startsWith(`${words[0]} `));
    if (group.length > 0) throw new UsageError(`${words[0]}: expected ${group.map((c) => c.name.split(" ")[1]).join(", ")}`, usage());
    throw new UsageError(`unknown command ${JSON.stringify(words[0])}`, usage());
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON, ...command.options }, strict: true, allowPositionals: true });
  } catch (error) {
    throw parseError(error, command);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const rest = parsed.positionals.slice(command.name.split(" ").length);
  if (values.help) {
    print(commandHelp(command));
    return 0;
  }
  if (rest.length > command.arity) {
    throw new UsageError(`${command.name}: unexpected ${JSON.stringify(rest.slice(command.arity).join(" "))}`, commandHelp(command));
  }
  const json = values.json === true;
  const server = (values.server as string | undefined) ?? process.env.MXSCREEN_SERVER;
  if (server !== undefined && command.localOnly) {
    throw new UsageError(`${command.name} works on this machine's store only, not with --server`);
  }

  if (command.name === "config") {
    showConfig(values.all === true, json, print);
    return 0;
  }
  if (command.name === "migrate") {
    const config = loadConfig(process.env, { hostname: hostname(), cpus: 1, openFiles: openFilesLimit() ?? USUAL_OPEN_FILES });
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

  const backend = server === undefined
    ? await localBackend()
    : remoteBackend(server, (values.token as string | undefined) ?? process.env.MXSCREEN_ADMIN_TOKEN);
  try {
    const [target = ""] = rest;
    if (command.name === "stats") {
      const stats = await backend.stats();
      if (json) print(JSON.stringify(stats, null, 2));
      else {
        print(`in force: ${stats.lists.ban} bans, ${stats.lists.pass} passes, ${stats.lists.allow} allow entries`);
        print(`\nverdicts, last hour (fleet):\n${table(Object.entries(stats.events).map(([event, n]) => ({ event, n })), ["event", "n"])}`);
        print(
          `\ntop offenders, last hour:\n${
            table(stats.topOffenders.map((o) => ({ ...o, last: new Date(o.last).toISOString() })), ["ip", "events", "lastEvent", "last"])
          }`,
        );
        print(
          `\nnodes:\n${
            table(stats.nodes.map((n) => ({ ...n, lastSeen: new Date(n.lastSeen).toISOString() })), [
              "name",
              "runtime",
              "listen",
              "lastSeen",
            ])
          }`,
        );
        if (stats.observed) print(`\n${observedTable(stats.observed)}`);
      }
      return 0;
    }
    if (command.name === "explain") {
      if (!parseIP(target)) throw new UsageError(`explain: ${JSON.stringify(target)} is not an IP address`);
      const result = await backend.explain(target);
      if (json) print(JSON.stringify(result, null, 2));
      else {
        print(
          `verdicts about ${result.ip}:\n${
            table(result.events.map((e) => ({ ...e, evidence: JSON.stringify(e.evidence) })), [
              "at",
              "node",
              "event",
              "check",
              "action",
              "evidence",
            ])
          }`,
        );
        print(
          `\nlist entries covering ${result.ip}:\n${
            table(result.lists.map((l) => ({ ...l, at: l.createdAt, expires: l.expiresAt ?? "never" })), [
              "at",
              "kind",
              "prefix",
              "op",
              "expires",
              "node",
              "check",
              "reason",
            ])
          }`,
        );
      }
      return 0;
    }
    const [kindWord, sub] = command.name.split(" ");
    const kind = kindWord as ListKind;
    if (sub === "ls") {
      const entries = await backend.list(kind);
      print(json ? JSON.stringify(entries, null, 2) : entryTable(entries));
      return 0;
    }
    if (sub === "import") {
      const text = target === "-" ? await readStdin() : await readFile(target, "utf8").catch((error) => {
        throw new UsageError(`${kind} import: cannot read ${JSON.stringify(target)}: ${(error as Error).message}`);
      });
      const total = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
      const terminal = process.stderr.isTTY === true;
      const show = (report: ImportReport) => {
        if (terminal) {
          process.stderr.write(
            `\rmxscreen: ${kind} import: line ${report.lastLine.toLocaleString("en")} of ${total.toLocaleString("en")}, ${
              report.added.toLocaleString("en")
            } added`,
          );
        }
      };
      const report = await backend.import(kind as "ban" | "allow", text, {
        ttl: values.ttl as string | undefined,
        reason: values.reason as string | undefined,
        force: values.force as boolean | undefined,
      }, show);
      if (terminal) process.stderr.write("\r\x1b[K");
      if (json) print(JSON.stringify(report, null, 2));
      else print(importSummary(kind, report));
      return report.refusedCount > 0 ? 1 : 0;
    }
    if (sub === "add") {
      const entry = await backend.add(kind, {
        address: target,
        ttl: values.ttl as string | undefined,
        reason: values.reason as string | undefined,
        force: values.force as boolean | undefined,
      });
      print(
        json ? JSON.stringify(entry) : `${kind === "ban" ? "banned" : "allowed"} ${entry.prefix} until ${entry.expiresAt ?? "removed"}`,
      );
      return 0;
    }
    const checked = checkAddress(target);
    if (!checked.ok) throw new UsageError(`${kind} rm: ${checked.error}`);
    if (!(await backend.remove(kind, checked.value))) {
      throw new Failure(
        `${kind} rm: ${
          formatPrefix(parsePrefix(checked.value)!)
        } is not on the ${kind} list: nothing was removed (see mxscreen ${kind} ls)`,
      );
    }
    print(json ? JSON.stringify({ removed: checked.value }) : `removed ${checked.value} from the ${kind} list`);
    return 0;
  } finally {
    await backend.close();
  }
}

run(process.argv.slice(2), (text) => console.log(text)).then(
  (code) => process.exit(code),
  (error) => {
    if (error instanceof UsageError) {
      console.error(error.help ? `mxscreen: ${error.message}\n\n${error.help}` : `mxscreen: ${error.message}`);
      process.exit(2);
    }
    console.error(`mxscreen: ${(error as Error).message}`);
    process.exit(error instanceof ConfigError ? 2 : 1);
  },
);
