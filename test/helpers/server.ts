import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import DENO_PERMISSIONS from "../../src/net/runtime/deno-permissions.json" with { type: "json" };
import { runtimeName } from "../../src/net/runtime/which-runtime.ts";
import { onCleanup } from "../harness.ts";
import { startDnsmasq } from "./dnsmasq.ts";
import { LineLog } from "./line-log.ts";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The runtime running the tests: servers start on it unless a test asks for the other. */
export const RUNTIME = runtimeName().split(" ")[0] as "deno" | "bun";

/** Runs `script` on the given runtime from node_modules, with the permissions mxscreen needs on Deno. */
export function runtimeCommand(runtime: "deno" | "bun", script: string): { command: string; args: string[] } {
  const command = join(ROOT, "node_modules/.bin", runtime);
  return runtime === "deno" ? { command, args: ["run", ...DENO_PERMISSIONS, script] } : { command, args: [script] };
}

export function tempDir(prefix = "mxscreen-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Ports for the processes a test starts, below the kernel's ephemeral range (32768 and up on
 * Linux): a port the kernel handed out and took back could be given to the next outgoing
 * connection of any process before the server binds it. Each suite starts at its own random
 * place and moves on, so the Deno and the Bun suites running side by side rarely meet.
 */
const PORTS_FROM = 20_000;
const PORTS_TO = 32_000;
let nextPort = PORTS_FROM + Math.floor(Math.random() * (PORTS_TO - PORTS_FROM));

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 1_000; tries++) {
    const port = nextPort;
    nextPort = nextPort + 1 >= PORTS_TO ? PORTS_FROM : nextPort + 1;
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port between ${PORTS_FROM} and ${PORTS_TO} on 127.0.0.1 after 1,000 tries`);
}

export interface RunningServer {
  readonly port: number;
  /** The admin API's base URL, when started with `admin: true`. */
  readonly admin: string;
  readonly dir: string;
  readonly dbUrl: string;
  readonly spoolDir: string;
  readonly process: ChildProcess;
  readonly lines: string[];
  readonly stderr: string[];
  /** Resolves with the first log line (present or future) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then waits for the exit code. */
  stop(): Promise<number | null>;
}

/** Starts a real mxscreen process on this runtime with a fresh database and spool, on a free loopback port. */
/**
 * With no MXSCREEN_DNS in `env`, a dnsmasq of its own answers the server's DNS from BASE_RECORDS
 * and `options.dns` (dnsmasq options): the machine's resolver never sees test traffic.
 */
export async function startServer(
  env: Record<string, string> = {},
  options: {
    dir?: string;
    listen?: (port: number) => string;
    admin?: boolean;
    runtime?: "deno" | "bun";
    dns?: readonly string[];
    /** The server's open-files limit (ulimit -n), to run it out of files. */
    openFiles?: number;
    /** Another program than src/main.ts on a runtime: the single binary, `[dist/mxscreen, serve]`. */
    command?: { command: string; args: string[] };
  } = {},
): Promise<RunningServer> {
  const dir = options.dir ?? tempDir();
  const dns = env.MXSCREEN_DNS ?? (await startDnsmasq(options.dns)).address;
  const port = await freePort();
  const adminPort = options.admin ? await freePort() : undefined;
  const dbUrl = `file:${join(dir, "mxscreen.db")}`;
  const spoolDir = join(dir, "spool");
  const run = options.command ?? runtimeCommand(options.runtime ?? RUNTIME, join(ROOT, "src/main.ts"));
  // exec keeps the PID, so the server is still stopped by its own PID.
  const { command, args } = options.openFiles === undefined
    ? run
    : { command: "/bin/sh", args: ["-c", `ulimit -n ${options.openFiles} && exec "$0" "$@"`, run.command, ...run.args] };
  const child = spawn(command, args, {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? dir,
      MXSCREEN_LISTEN: options.listen?.(port) ?? `127.0.0.1:${port}`,
      MXSCREEN_DB_URL: dbUrl,
      MXSCREEN_SPOOL_DIR: spoolDir,
      MXSCREEN_HOSTNAME: "mx.test.example",
      MXSCREEN_NODE: "node-a",
      MXSCREEN_WORKERS: "0",
      MXSCREEN_GREET_WAIT: "1s",
      // Paced replies cost every first visit time: off unless a test is about them (test/e2e/pacing.test.ts).
      MXSCREEN_STUTTER: "false",
      MXSCREEN_TARPIT_DELAY: "0ms",
      MXSCREEN_ADMIN_LISTEN: adminPort === undefined ? "" : `127.0.0.1:${adminPort}`,
      MXSCREEN_QUEUE_FILE: join(dir, "store-queue.jsonl"),
      MXSCREEN_DNS: dns,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stderr: string[] = [];
  const log = new LineLog("log", () => `\nstderr:\n${stderr.join("")}`);
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => log.write(chunk));
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code, signal) => {
      if (signal) stderr.push(`[exited on ${signal}]`);
      resolve(code);
    })
  );

  const server: RunningServer = {
    port,
    admin: adminPort === undefined ? "" : `http://127.0.0.1:${adminPort}`,
    dir,
    dbUrl,
    spoolDir,
    process: child,
    lines: log.lines,
    stderr,
    waitForLine: (pattern, timeoutMs = 10_000) => log.waitFor(pattern, timeoutMs),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      // By PID: Deno reports a child it signalled through child.kill() as killed by that
      // signal even when the child handled it and exited 0.
      process.kill(child.pid!, "SIGTERM");
      const killer = setTimeout(() => process.kill(child.pid!, "SIGKILL"), 15_000);
      const code = await exited;
      clearTimeout(killer);
      return code;
    },
  };
  onCleanup(() => server.stop());
  await Promise.race([
    server.waitForLine(/mxscreen started/, 20_000),
    exited.then((code) => {
      throw new Error(`mxscreen exited with ${code} before it started:\n${stderr.join("")}${log.lines.join("\n")}`);
    }),
  ]);
  return server;
}
