// Driver: how many idle held TCP connections does each listener API hold per MiB of
// server memory, on Deno and Bun?  Runs on either runtime (node:* modules only):
//
//   node_modules/.bin/deno run -A bench/listen-memory.ts --conns 5000 --reps 3
//   node_modules/.bin/bun bench/listen-memory.ts --conns 5000 --reps 3
//
// For each rep, for each combo (interleaved A B C D A B C D ...): start
// bench/listen-server.ts as a subprocess, read its VmRSS, open N client connections
// from this process (spread over source addresses 127.0.x.y, <= --per-addr each, in
// bounded batches), wait for every "220-" teaser, settle, read VmRSS again, and take
// the server's utime+stime consumed during the connect phase. Then close the clients
// and stop the server by its PID.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import * as net from "node:net";
import { readFileSync } from "node:fs";

// deno-lint-ignore no-explicit-any
const proc = (globalThis as any).process;

// ---------- options ----------
const argv: string[] = proc.argv.slice(2);
function opt(name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
}
function intOpt(name: string, dflt: number, min: number, max: number): number {
  const v = Number(opt(name, String(dflt)));
  if (!Number.isInteger(v) || v < min || v > max) {
    console.error(`--${name} must be an integer in [${min}, ${max}]`);
    proc.exit(2);
  }
  return v;
}
if (argv.includes("--help")) {
  console.log(
    "options: --conns N (5000) --reps R (3) --combos deno:deno-listen,deno:node-net,bun:bun-listen,bun:node-net\n" +
      "         --per-addr 200 --batch 500 --settle-ms 1000 --timeout-s 120 --read-buf 4096 --deno PATH --bun PATH",
  );
  proc.exit(0);
}
const FD_LIMIT = 20000;
const CONNS = intOpt("conns", 5000, 1, FD_LIMIT - 500);
const REPS = intOpt("reps", 3, 1, 50);
const PER_ADDR = intOpt("per-addr", 200, 1, 20000);
const BATCH = intOpt("batch", 500, 1, 5000);
const SETTLE_MS = intOpt("settle-ms", 1000, 0, 30000);
const TIMEOUT_MS = intOpt("timeout-s", 120, 5, 3600) * 1000;
const READ_BUF = intOpt("read-buf", 4096, 1, 1 << 20); // deno-listen: bytes per pending read
const CONNECT_TIMEOUT_MS = 10000; // per batch

const BENCH_DIR = new URL(".", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const SERVER = BENCH_DIR + "listen-server.ts";
const BINS: Record<string, string> = {
  deno: opt("deno", ROOT + "node_modules/.bin/deno"),
  bun: opt("bun", ROOT + "node_modules/.bin/bun"),
};
const RUN_ARGS: Record<string, string[]> = { deno: ["run", "-A"], bun: [] };

interface Combo {
  runtime: string;
  api: string;
}
const combos: Combo[] = opt(
  "combos",
  "deno:deno-listen,deno:node-net,bun:bun-listen,bun:node-net",
).split(",").map((s) => {
  const [runtime, api] = s.split(":");
  if (!BINS[runtime] || !api) {
    console.error(`bad combo ${s}`);
    proc.exit(2);
  }
  return { runtime, api };
});

let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
} catch { /* keep 100 */ }

// ---------- helpers ----------
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function vmRssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

function cpuTicks(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" "); // f[0] = field 3 (state)
  return Number(f[11]) + Number(f[12]); // utime (14) + stime (15)
}

function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const a = [...xs].sort((x, y) => x - y);
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}

// Source addresses 127.0.x.y, x,y in 1..254; a global counter so that successive runs
// use fresh addresses (client-side TIME_WAIT from the previous run keeps ports busy).
let addrCounter = 0;
function nextSourceAddr(): string {
  const i = addrCounter++ % (254 * 254);
  return `127.0.${1 + Math.floor(i / 254)}.${1 + (i % 254)}`;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM"); // signals child.pid only
  if (await waitExit(child, 5000)) return;
  child.kill("SIGKILL");
  if (!(await waitExit(child, 5000))) console.error(`server pid ${child.pid} did not exit`);
}

function startServer(
  c: Combo,
  deadline: number,
): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  const extra = c.api === "deno-listen" ? ["--read-buf", String(READ_BUF)] : [];
  const child = spawn(BINS[c.runtime], [...RUN_ARGS[c.runtime], SERVER, "--api", c.api, "--port", "0", ...extra], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (d) => {
    if (err.length < 4000) err += d.toString();
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      reject(new Error(`server not ready in time; stderr: ${err.trim().slice(0, 500)}`));
      void stopServer(child);
    }, Math.max(0, Math.min(20000, deadline - Date.now())));
    child.on("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.once("exit", (code) => {
      clearTimeout(t);
      reject(new Error(`server exited (${code}) before ready: ${err.trim().slice(0, 500)}`));
    });
    child.stdout!.on("data", (d) => {
      if (out.length > 1000) return;
      out += d.toString();
      const m = /^ready (\d+)$/m.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ child, port: Number(m[1]), stderr: () => err });
      }
    });
  });
}

interface Client {
  sock: net.Socket;
  greeted: boolean;
  closed: boolean;
}

// Opens one connection; resolves when the "220-" teaser arrived, or with an error label.
function openClient(port: number, localAddress: string, clients: Client[]): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port, localAddress });
    const c: Client = { sock, greeted: false, closed: false };
    clients.push(c);
    let buf = "";
    let done = false;
    const finish = (r: string | null) => {
      if (!done) {
        done = true;
        resolve(r);
      }
    };
    sock.on("data", (d) => {
      if (c.greeted) return;
      buf += d.toString("latin1");
      if (buf.length >= 4) {
        if (buf.startsWith("220-")) {
          c.greeted = true;
          finish(null);
        } else finish("bad-banner");
      }
    });
    sock.on("error", (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
    sock.on("close", () => {
      c.closed = true;
      finish("closed-before-banner");
    });
  });
}

interface RunResult {
  combo: Combo;
  ok: boolean;
  held: number;
  rss0: number;
  rss1: number;
  kibPerConn: number;
  cpuMsPer1000: number;
  connectMs: number;
  errors: Record<string, number>;
  note: string;
}

async function runOnce(c: Combo, n: number): Promise<RunResult> {
  const deadline = Date.now() + TIMEOUT_MS;
  const errors: Record<string, number> = {};
  const addErr = (k: string, by = 1) => (errors[k] = (errors[k] ?? 0) + by);
  const clients: Client[] = [];
  const res: RunResult = {
    combo: c,
    ok: false,
    held: 0,
    rss0: 0,
    rss1: 0,
    kibPerConn: NaN,
    cpuMsPer1000: NaN,
    connectMs: 0,
    errors,
    note: "",
  };
  let child: ChildProcess | undefined;
  let stderr = () => "";
  try {
    const s = await startServer(c, deadline);
    child = s.child;
    stderr = s.stderr;
    const pid = child.pid!;
    await sleep(500); // let start-up allocation settle
    res.rss0 = vmRssKiB(pid);
    const cpu0 = cpuTicks(pid);
    const t0 = Date.now();

    let addr = nextSourceAddr();
    let onAddr = 0;
    for (let opened = 0; opened < n;) {
      if (Date.now() > deadline) {
        addErr("run-timeout", n - opened);
        break;
      }
      const k = Math.min(BATCH, n - opened);
      const batch: Promise<string | null>[] = [];
      for (let i = 0; i < k; i++) {
        if (onAddr >= PER_ADDR) {
          addr = nextSourceAddr();
          onAddr = 0;
        }
        onAddr++;
        batch.push(openClient(s.port, addr, clients));
      }
      opened += k;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"t">((r) => {
        timer = setTimeout(() => r("t"), Math.max(0, Math.min(CONNECT_TIMEOUT_MS, deadline - Date.now())));
      });
      const all = Promise.all(batch);
      const r = await Promise.race([all, timeout]);
      clearTimeout(timer);
      if (r === "t") {
        // count the ones of this batch still waiting; they stay in `clients` and are destroyed below
        const pending = clients.slice(clients.length - k).filter((x) => !x.greeted && !x.closed);
        addErr("banner-timeout", pending.length);
        for (const x of pending) x.sock.destroy();
        const settled = await Promise.race([all, sleep(1000).then(() => null)]);
        if (settled) { for (const e of settled) if (e && e !== "closed-before-banner") addErr(e); }
      } else {
        for (const e of r) if (e) addErr(e);
      }
    }
    const cpu1 = cpuTicks(pid);
    res.connectMs = Date.now() - t0;
    await sleep(SETTLE_MS);
    if (child.exitCode !== null || child.signalCode !== null) throw new Error("server died");
    res.rss1 = vmRssKiB(pid);
    res.held = clients.filter((x) => x.greeted && !x.closed).length;
    const dropped = clients.filter((x) => x.greeted && x.closed).length;
    if (dropped) addErr("dropped-after-banner", dropped);
    if (res.held > 0) {
      res.kibPerConn = (res.rss1 - res.rss0) / res.held;
      res.cpuMsPer1000 = ((cpu1 - cpu0) * 1000 / CLK_TCK) / res.held * 1000;
      res.ok = true;
    }
  } catch (e) {
    res.note = (e as Error).message.slice(0, 300);
  } finally {
    for (const x of clients) x.sock.destroy();
    await sleep(200);
    if (child) await stopServer(child);
    const se = stderr().trim();
    if (se) res.note += (res.note ? "; " : "") + "server stderr: " + se.split("\n").slice(0, 3).join(" | ");
  }
  return res;
}

// ---------- main ----------
const driverRt = (globalThis as { Bun?: { version: string } }).Bun
  ? `bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
  : `deno ${proc.versions?.deno ?? "?"}`;
const versions: Record<string, string> = {};
for (const rt of Object.keys(BINS)) {
  try {
    versions[rt] = execFileSync(BINS[rt], ["--version"]).toString().split("\n")[0].trim();
  } catch {
    versions[rt] = "missing";
  }
}
console.log(
  `# listen-memory: conns=${CONNS} reps=${REPS} per-addr=${PER_ADDR} batch=${BATCH} settle=${SETTLE_MS}ms ` +
    `read-buf=${READ_BUF} ` +
    `driver=${driverRt}; ${Object.entries(versions).map(([k, v]) => `${k}: ${v}`).join("; ")}`,
);
if (2 * CONNS > FD_LIMIT) {
  console.log(`# note: driver holds ${CONNS} sockets and the server ${CONNS}; separate processes, each under ${FD_LIMIT}`);
}

const results: RunResult[] = [];
for (let rep = 1; rep <= REPS; rep++) {
  for (const c of combos) {
    if (versions[c.runtime] === "missing") continue;
    const r = await runOnce(c, CONNS);
    results.push(r);
    const errs = Object.entries(r.errors).map(([k, v]) => `${k}=${v}`).join(",");
    console.log(
      `rep ${rep} ${c.runtime}/${c.api}: held=${r.held} rss ${(r.rss0 / 1024).toFixed(1)}->${(r.rss1 / 1024).toFixed(1)} MiB  ${
        r.kibPerConn.toFixed(2)
      } KiB/conn  cpu ${r.cpuMsPer1000.toFixed(0)} ms/1000  connect ${r.connectMs} ms` +
        (errs ? `  errors: ${errs}` : "") + (r.note ? `  note: ${r.note}` : ""),
    );
  }
}

console.log("");
console.log(
  "| runtime | api | conns held (min) | base RSS MiB | RSS growth KiB/conn (median) | conns per MiB | CPU ms / 1000 conns (median) | ok reps | errors |",
);
console.log("|---|---|---:|---:|---:|---:|---:|---:|---|");
for (const c of combos) {
  const rs = results.filter((r) => r.combo === c);
  const ok = rs.filter((r) => r.ok);
  const kib = median(ok.map((r) => r.kibPerConn));
  const cpu = median(ok.map((r) => r.cpuMsPer1000));
  const errs: Record<string, number> = {};
  for (const r of rs) for (const [k, v] of Object.entries(r.errors)) errs[k] = (errs[k] ?? 0) + v;
  const failed = rs.filter((r) => !r.ok).length;
  const errStr = Object.entries(errs).map(([k, v]) => `${k}=${v}`).join(", ") +
    (failed ? `${Object.keys(errs).length ? ", " : ""}failed runs=${failed}` : "");
  console.log(
    `| ${c.runtime} | ${c.api} | ${ok.length ? Math.min(...ok.map((r) => r.held)) : 0} | ${
      ok.length ? (median(ok.map((r) => r.rss0)) / 1024).toFixed(1) : "-"
    } | ${kib.toFixed(2)} | ${(1024 / kib).toFixed(0)} | ${cpu.toFixed(0)} | ${ok.length}/${rs.length} | ${errStr || "none"} |`,
  );
}
proc.exit(0);
