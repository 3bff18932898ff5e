import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import assert from "node:assert/strict";
import { onCleanup } from "../harness.ts";
import { LineLog } from "./line-log.ts";
import { ROOT, type RunningServer, startServer, tempDir } from "./server.ts";
import { spooled } from "./spooled.ts";
import { RawClient } from "./smtp-client.ts";
import { swaks, type SwaksResult } from "./swaks.ts";

/**
 * Where test/run-all.mjs unpacks Debian's exim4-daemon-heavy and opensmtpd: installing either
 * would remove Postfix (Debian allows one mail-transport-agent).
 */
const UNPACKED_MTAS = join(ROOT, "node_modules/.cache/mta");

/** A file of an unpacked MTA package, e.g. `unpacked("opensmtpd", "usr/sbin/smtpd")`. */
export function unpacked(pkg: string, path: string): string {
  const file = join(UNPACKED_MTAS, pkg, path);
  if (!existsSync(join(UNPACKED_MTAS, pkg, ".unpacked")) || !existsSync(file)) {
    throw new Error(`${file} is missing: run \`node test/run-all.mjs interop\` once as root, which unpacks Debian's ${pkg} there`);
  }
  return file;
}

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new Error(`the interop tests start a private ${what}, which needs root: run them as root`);
}

export interface PrivateProcess {
  readonly child: ChildProcess;
  /** Everything it wrote on stdout and stderr, as lines. */
  readonly output: LineLog;
  readonly exited: Promise<void>;
  /** `signal` (SIGTERM unless told) by PID, SIGKILL after 10 s; resolves when it has exited. */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
}

/**
 * Runs `command` in a mount namespace of its own (unshare execs it, so the PID is the MTA's),
 * with each `[source, target]` of `binds` mounted over the target there only: the MTAs' compiled-in
 * spool, run and library paths point into the test's directory, and the machine's stay untouched.
 * /etc/resolv.conf is always replaced by one that names only 127.0.0.1, where nothing answers,
 * and (OpenSMTPD's resolver) `lookup file`: the MTA's lookups never reach a real resolver.
 */
export function spawnPrivate(
  dir: string,
  command: string,
  args: readonly string[],
  binds: readonly [string, string][] = [],
  input?: string,
): PrivateProcess {
  const resolvConf = join(dir, "resolv.conf");
  if (!existsSync(resolvConf)) writeFileSync(resolvConf, "lookup file\nnameserver 127.0.0.1\noptions attempts:1 timeout:1\n");
  // resolv.conf first: on a machine where it is a link into /run, a bind over /run would hide its target.
  const mounts = [[resolvConf, "/etc/resolv.conf"], ...binds].map(([source, target]) => `mount --bind '${source}' '${target}'`);
  const script = `${mounts.join(" && ")} && exec "$0" "$@"`;
  const child = spawn("unshare", ["--mount", "--propagation", "private", "sh", "-c", script, command, ...args], {
    stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
  });
  const output = new LineLog(`${command} output`);
  // No unshare (util-linux) or no such binary: say so in the output, which the caller shows.
  child.on("error", (error) => output.write(`cannot run ${command} through unshare: ${error.message}\n`));
  if (input !== undefined) child.stdin!.end(input);
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => output.write(chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => output.write(chunk));
  const exited = new Promise<void>((resolve) => {
    child.on("exit", () => resolve());
    child.on("error", () => resolve());
  });
  const running = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  const stop = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM") => {
    if (!running()) return;
    process.kill(child.pid!, signal);
    const killer = setTimeout(() => running() && process.kill(child.pid!, "SIGKILL"), 10_000);
    await exited;
    clearTimeout(killer);
  };
  onCleanup(() => stop());
  return { child, output, exited, stop };
}

/** Runs a short command privately to its end, killed past `timeoutMs`. */
export async function runPrivate(
  dir: string,
  command: string,
  args: readonly string[],
  options: { binds?: readonly [string, string][]; input?: string; timeoutMs?: number } = {},
): Promise<{ code: number | null; output: string }> {
  const run = spawnPrivate(dir, command, args, options.binds, options.input);
  const killer = setTimeout(() => run.stop("SIGKILL"), options.timeoutMs ?? 30_000);
  await run.exited;
  clearTimeout(killer);
  return { code: run.child.exitCode, output: run.output.lines.join("\n") };
}

/** Follows a log file an MTA appends to, line by line, until the test's cleanup. */
export function followFile(path: string, name: string, context: () => string = () => ""): LineLog {
  const log = new LineLog(name, context);
  let read = 0;
  const tail = setInterval(() => {
    if (!existsSync(path)) return;
    const text = readFileSync(path, "latin1");
    const end = text.lastIndexOf("\n") + 1;
    if (end > read) log.write(text.slice(read, end));
    read = Math.max(read, end);
  }, 100);
  onCleanup(() => clearInterval(tail));
  return log;
}

/** Named logs for an assertion's message: what each party said, when a test fails. */
export function logs(...named: [string, readonly string[]][]): string {
  return named.map(([name, lines]) => `\n--- ${name}:\n${lines.join("\n")}`).join("");
}

/** The messages an MTA has delivered to the maildir `dir`, in no particular order. */
export function maildirMessages(dir: string): string[] {
  const found: string[] = [];
  for (const sub of ["new", "cur"]) {
    if (!existsSync(join(dir, sub))) continue;
    for (const name of readdirSync(join(dir, sub))) found.push(readFileSync(join(dir, sub, name), "utf8"));
  }
  return found;
}

/** The body of a stored message: everything after the first empty line. */
export function bodyOf(message: string): string {
  const end = message.indexOf("\n\n");
  if (end < 0) throw new Error(`no end of headers in the stored message:\n${message}`);
  return message.slice(end + 2);
}

/**
 * A message body with what breaks naive relays: lines that are or start with dots (a lone dot
 * would end DATA early unless stuffed again), 8-bit UTF-8 text, and a line of 990 octets (the
 * limit is 998), LF-terminated as spooled and stored mail is.
 */
export const TRICKY_BODY = [
  "first line",
  ".",
  ".leading dot",
  "..two dots",
  "8-bit: café, Grüße, 日本語",
  "x".repeat(990),
  "last line",
  "",
].join("\n");

/** A whole message in wire form (CRLF, dot-stuffed, ending with the lone dot), for swaks --data --no-data-fixup. */
function wireMessage(headers: readonly string[], body: string): string {
  const lines = body.replace(/\n$/, "").split("\n").map((line) => line.startsWith(".") ? `.${line}` : line);
  return [...headers, "", ...lines, "."].join("\r\n");
}

/**
 * swaks sends a message with TRICKY_BODY and `Subject: subject` from sender@example.net to `to`
 * at 127.0.0.1:`port`, from `source`, exactly as written: no swaks body fix-ups (they would add
 * a line and rewrite `\n` sequences).
 */
export function sendTricky(port: number, source: string, to: string, subject: string): Promise<SwaksResult> {
  const file = join(tempDir(), "message.eml");
  writeFileSync(file, wireMessage([`Subject: ${subject}`, "From: sender@example.net", `To: ${to}`], TRICKY_BODY));
  return swaks([
    "--server",
    `127.0.0.1:${port}`,
    "--local-interface",
    source,
    "--helo",
    "relay-client.example.net",
    "--from",
    "sender@example.net",
    "--to",
    to,
    "--data",
    `@${file}`,
    "--no-data-fixup",
  ]);
}

/** Sessions on the main thread and in Web Workers: the I/O glue the peers' faults reach differs. */
export const WORKERS = ["0", "2"] as const;

/**
 * mxscreen spooling what it accepts for example.org, PIPELINING offered or not, with stutter on:
 * a real MTA sending through it must never trip it (test/e2e/pacing.test.ts has the bot that does).
 */
export function startSpooling(pipelining: string, workers: string): Promise<RunningServer> {
  return startServer({
    MXSCREEN_GREET_WAIT: "300ms",
    MXSCREEN_STUTTER: "true",
    MXSCREEN_STUTTER_DELAY: "100ms",
    MXSCREEN_ACCEPT_DOMAINS: "example.org",
    MXSCREEN_PIPELINING: pipelining,
    MXSCREEN_WORKERS: workers,
  });
}

/** The one message `server` spooled: once, with `Subject: subject`, its body byte for byte TRICKY_BODY. */
export function checkSpooledOnce(server: RunningServer, subject: string, context: () => string): void {
  const files = spooled(server.spoolDir);
  assert.equal(files.length, 1, `spooled ${files.length} times${context()}`);
  assert.ok(files[0].includes(`\nSubject: ${subject}\n`), files[0]);
  assert.equal(bodyOf(files[0]), TRICKY_BODY);
}

/** mxscreen relaying to the MTA at 127.0.0.1:`upstreamPort`, telling it the client's address or not. */
export function startRelay(upstreamPort: number, identity: "proxy" | "none", workers = "0"): Promise<RunningServer> {
  return startServer({
    MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${upstreamPort}`,
    MXSCREEN_UPSTREAM_IDENTITY: identity,
    MXSCREEN_GREET_WAIT: "300ms",
    MXSCREEN_WORKERS: workers,
  });
}

/**
 * A recipient the upstream does not know: its refusal must reach the client of mxscreen as the
 * upstream wrote it (`refusal`), `logged` must find the upstream's own log of it, and a known
 * recipient (`accepted`) must still be taken in the same transaction.
 */
export async function checkUnknownUserPassedBack(
  server: RunningServer,
  source: string,
  refusal: RegExp,
  accepted: RegExp,
  logged: () => Promise<unknown>,
): Promise<void> {
  const client = await openTransaction(server.port, source);
  const refused = await client.command("RCPT TO:<nobody@example.org>", /^\d{3} [^\r\n]*\r\n$/m);
  assert.match(refused, refusal);
  await logged();
  await client.command("RCPT TO:<someone@example.org>", accepted);
  await client.command("QUIT", /^221 [^\r\n]*\r\n$/m);
}

/** A client of mxscreen from `source` that has had EHLO and MAIL answered, the upstream asked on the way. */
async function openTransaction(port: number, source: string): Promise<RawClient> {
  const client = await RawClient.greeted(port, source);
  await client.command("EHLO relay-client.example.net", /^250 [^\r\n]*\r\n$/m);
  await client.command("MAIL FROM:<sender@example.net>", /^250 [^\r\n]*\r\n$/m);
  return client;
}

/**
 * The upstream stopped between RCPT (accepted, `accepted` being its reply) and DATA: the client
 * of mxscreen must get a 4xx for DATA, never 354 or 250; mxscreen must stay up, two bystanders
 * (sessions open at the time, not using the upstream yet, so on either worker) must go on
 * untouched, and a new client must be greeted. Clients come from `net`.1 to .4. `stop` stops
 * the upstream; `upstreamLog` is shown when the check fails.
 */
export async function checkDataAfterUpstreamStopped(
  server: RunningServer,
  net: string,
  accepted: RegExp,
  stop: () => Promise<void>,
  upstreamLog: [string, readonly string[]],
): Promise<void> {
  const client = await openTransaction(server.port, `${net}.1`);
  const bystanders = [await RawClient.greeted(server.port, `${net}.2`), await RawClient.greeted(server.port, `${net}.3`)];
  for (const bystander of bystanders) await bystander.command("EHLO bystander.example.net", /^250 [^\r\n]*\r\n$/m);
  await client.command("RCPT TO:<someone@example.org>", accepted);
  await stop();
  // The upstream is gone before the client's next command, every time: mxscreen has seen the
  // connection end (without this, DATA sometimes races the FIN and the outcome varies by run).
  await new Promise((resolve) => setTimeout(resolve, 300));
  const from = client.text.length;
  client.write("DATA\r\n");
  await client.until(/^\d{3} [^\r\n]*\r\n/m, 15_000, from).catch(() => {});
  // A crash comes a moment after the reply, from the upstream's side of the session: give it time to show.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const context = () =>
    logs(
      ["client", [client.text]],
      ...bystanders.map((b, n): [string, string[]] => [`bystander ${n + 1}`, [b.text]]),
      ["mxscreen", server.lines],
      ["mxscreen stderr", server.stderr],
      upstreamLog,
    );
  assert.match(client.text.slice(from), /^4\d\d [^\r\n]*\r\n/m, context());
  assert.doesNotMatch(client.text.slice(from), /^(354|250) /m, context());
  assert.equal(server.process.exitCode, null, `mxscreen exited${context()}`);
  assert.equal(server.process.signalCode, null, `mxscreen was killed${context()}`);
  for (const bystander of bystanders) {
    await bystander.command("NOOP", /^250 [^\r\n]*\r\n$/m).catch((error) =>
      assert.fail(`a bystander was hit: ${error.message}${context()}`)
    );
    await bystander.command("QUIT", /^221 [^\r\n]*\r\n$/m);
  }
  const next = await RawClient.greeted(server.port, `${net}.4`).catch((error) => assert.fail(`${error.message}${context()}`));
  await next.command("QUIT", /^221 [^\r\n]*\r\n$/m);
}
