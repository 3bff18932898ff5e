// The side-by-side scale bench: postscreen, Haraka and mxscreen (Deno, Bun; spool, relay) under
// the same load, interleaved (A B A B …), several repetitions; one table of medians at the end.
// Run by bench/run-all.mjs inside a network namespace of its own (only loopback exists there):
// it refuses to run outside one. See bench/README.md for the method and the options.
import { fork, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cpuByName, cpuMs, processCount, pssKiB } from "./proc.mjs";
import { DOMAIN, haraka, mxscreen, postscreen, startDnsmasq, startUpstream, UPSTREAM_URL } from "./servers.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------ options
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};
const quick = flag("quick");
const O = {
  reps: Number(opt("reps", quick ? 1 : 3)),
  heldReps: Number(opt("held-reps", quick ? 1 : 2)),
  heldRepsLarge: Number(opt("held-reps", 1)), // N ≥ 18,000: one rep by default (each takes a minute or more)
  only: opt("only", "held,pregreet,clean,compare,lookup,propagation").split(","),
  held: opt("held", quick ? "1000" : "1000,5000,18900,40000").split(",").map(Number),
  heldWait: opt("held-wait", ""), // seconds; default per N: 10 + N/1000
  greetWait: Number(opt("greet-wait", 6)),
  pregreetN: Number(opt("pregreet-n", quick ? 400 : 600)),
  cleanN: Number(opt("clean-n", quick ? 500 : 1500)),
  cleanAddrs: 50,
  warmN: Number(opt("warm-n", quick ? 500 : 1500)),
  targets: opt("targets", "postscreen,haraka,mx-deno,mx-bun").split(","),
  harakaDir: opt("haraka-dir", ""),
  command: opt("command", "node bench/run-all.mjs " + argv.join(" ")),
  // Clean runs: CPU per session of each process name (smtpd, cleanup, qmgr, …) of the server and the upstream.
  breakdown: flag("breakdown"),
};
const has = (phase) => O.only.includes(phase);
const heldWaitS = (n) => (O.heldWait ? Number(O.heldWait) : Math.round(10 + (1.2 * n) / 1000));
const PER_ADDR = 200;
const GEN_MAX = 15_000; // sockets per load-generator process (each has the 20,000 open-files limit)

if (!process.env.MXBENCH_NETNS) {
  console.error("bench/peers.mjs runs inside the network namespace that bench/run-all.mjs makes: run `node bench/run-all.mjs`");
  process.exit(2);
}

// ------------------------------------------------------------------------ fresh source addresses
// Consecutive addresses land in different /24s (the third octet moves fastest), so that no
// server's per-prefix limit is what a run measures. Clean-session clients come from
// 127.64.0.0/10 (Haraka's early_talker whitelist: the "known" clients), all others from 127.128.0.0/9.
let nextOther = 0;
let nextClean = 0;
function addrs(count, clean = false) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const c = clean ? nextClean++ : nextOther++;
    out.push(
      clean
        ? `127.${64 + ((c >> 8) & 63)}.${c & 255}.${1 + ((c >> 14) % 250)}`
        : `127.${128 + ((c >> 8) & 127)}.${c & 255}.${1 + ((c >> 15) % 250)}`,
    );
  }
  return out;
}
const CLEAN_PREFIX = "127.64.0.0/10";

// ------------------------------------------------------------------------------ processes we own
const tmp = mkdtempSync("/tmp/mxbench-");
chmodSync(tmp, 0o755); // Postfix's daemons run as the postfix user and must reach their directories
const live = new Set(); // { stop() }
let generators = [];

function generator() {
  const child = fork(join(ROOT, "bench/load.mjs"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let id = 0;
  const waiting = new Map();
  child.on("message", (m) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.ok) w?.resolve(m.result);
    else w?.reject(new Error(m.error));
  });
  child.on("exit", () => {
    for (const w of waiting.values()) w.reject(new Error("load generator exited"));
    waiting.clear();
  });
  return {
    child,
    call(op, args, timeoutMs) {
      return new Promise((resolve, reject) => {
        const myId = ++id;
        const timer = setTimeout(() => {
          waiting.delete(myId);
          reject(new Error(`load generator: ${op} took over ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(myId, {
          resolve: (r) => (clearTimeout(timer), resolve(r)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
        child.send({ id: myId, op, ...args });
      });
    },
    stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
    },
  };
}

function ensureGenerators(n) {
  while (generators.length < n) generators.push(generator());
}

async function cleanup() {
  for (const g of generators) g.stop();
  generators = [];
  for (const s of [...live].reverse()) {
    try {
      await s.stop();
    } catch (e) {
      console.error(`bench: stopping: ${e.message}`);
    }
  }
  live.clear();
  rmSync(tmp, { recursive: true, force: true });
}
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => {
    console.error(`bench: ${sig}: stopping every process the bench started`);
    await cleanup();
    process.exit(130);
  });
}

let runNo = 0;
async function withServer(target, opts, body) {
  const dir = join(tmp, `run-${++runNo}-${target.name}`);
  const server = await target.start(dir, opts);
  live.add(server);
  try {
    return await body(server);
  } finally {
    await server.stop();
    live.delete(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

// --------------------------------------------------------------------------------------- stats
const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const results = []; // { phase, key, target, rep, values }
const record = (phase, key, target, values) => {
  results.push({ phase, key, target: target.name, label: target.label, values });
  console.log(`  ${phase} ${key} ${target.label}: ${JSON.stringify(values)}`);
};

// ---------------------------------------------------------------------------------- scenarios
async function probe(port, timeoutMs = 5000) {
  ensureGenerators(1);
  return await generators[0].call("probe", { port, addr: addrs(1)[0], timeoutMs }, timeoutMs + 5000);
}

/** N polite clients held in the greet wait at once; then they all pass and go on to EHLO and QUIT. */
async function heldRun(target, n, variant) {
  const waitS = heldWaitS(n);
  return await withServer(target, { greetWaitS: waitS, ...variant }, async (server) => {
    await probe(server.port); // the listener's process is up (postscreen starts on the first client)
    await sleep(1500);
    const cpu0 = cpuMs(server.pids);
    const pss0 = pssKiB(server.pids);
    const k = Math.ceil(n / GEN_MAX);
    ensureGenerators(k);
    const per = Math.ceil(n / k);
    const openStart = Date.now();
    const opened = await Promise.all(
      generators.slice(0, k).map((g, i) => {
        const count = Math.min(per, n - i * per);
        return g.call("held-open", {
          port: server.port,
          addrs: addrs(Math.ceil(count / PER_ADDR)),
          n: count,
          perAddr: PER_ADDR,
          batch: 250,
          connectTimeoutMs: 10_000,
          deadlineMs: waitS * 1000 * 0.8,
        }, waitS * 1000 + 30_000);
      }),
    );
    const openMs = Date.now() - openStart;
    await sleep(1000);
    const status = await Promise.all(generators.slice(0, k).map((g) => g.call("held-status", {}, 30_000)));
    const pss1 = pssKiB(server.pids);
    const procs = processCount(server.pids);
    const p = await probe(server.port, (waitS + 10) * 1000); // Haraka says nothing until its pause ends
    const sum = (arr, f) => arr.reduce((a, x) => a + f(x), 0);
    const open = sum(status, (s) => s.waiting); // connected, not closed, not yet let in
    const teased = sum(status, (s) => s.teasedOpen);
    const passedEarly = sum(status, (s) => s.greeted);
    // Everyone passes the greet wait about waitS after its connect; give them 60 s beyond that.
    const remaining = openStart + waitS * 1000 + 60_000 - Date.now();
    const finished = await Promise.all(
      generators.slice(0, k).map((g) => g.call("held-finish", { timeoutMs: Math.max(5000, remaining) }, remaining + 30_000)),
    );
    const cpu1 = cpuMs(server.pids);
    const ok = sum(finished, (f) => f.ok);
    const errors = {};
    for (const f of finished) for (const [e, c] of Object.entries(f.errors)) errors[e] = (errors[e] ?? 0) + c;
    return {
      n,
      waitS,
      openMs,
      held: open,
      teased,
      passedEarly,
      kibPerHeld: (pss1 - pss0) / Math.max(1, open),
      pss0MiB: pss0 / 1024,
      pss1MiB: pss1 / 1024,
      procs,
      probeMs: p.ms,
      probeLine: p.line,
      ok,
      dropped: n - ok,
      errors,
      cpuMs: cpu1 - cpu0,
      config: server.config,
    };
  });
}

async function pregreetRun(target) {
  return await withServer(target, { greetWaitS: O.greetWait, cleanPrefix: CLEAN_PREFIX }, async (server) => {
    await probe(server.port);
    await sleep(1000);
    ensureGenerators(1);
    // Two rounds of fresh addresses: the first, on a fresh process, counts as the cold figure; the
    // second is the measure, as a flood longer than a few hundred clients finds the server (a
    // runtime compiles the verdict path over its first few hundred verdicts: bench of 2026-12-02).
    const round = async () => {
      const cpu0 = cpuMs(server.pids);
      const r = await generators[0].call("pregreet", {
        port: server.port,
        addrs: addrs(O.pregreetN),
        n: O.pregreetN,
        concurrency: 200,
        timeoutMs: (O.greetWait + 20) * 1000,
      }, (O.greetWait + 30) * 1000 * Math.ceil(O.pregreetN / 200) + 60_000);
      await sleep(500); // let the server finish its bookkeeping of the last closes
      return { r, cpu: cpuMs(server.pids) - cpu0 };
    };
    const cold = await round();
    const { r, cpu } = await round();
    const verdicts = (r.kinds.refused ?? 0) + (r.kinds.closed ?? 0);
    return {
      n: r.n,
      verdicts,
      perS: verdicts / (r.elapsedMs / 1000),
      cpuPer1000: (cpu / r.n) * 1000,
      coldCpuPer1000: (cold.cpu / cold.r.n) * 1000,
      p50: r.p50,
      p99: r.p99,
      kinds: r.kinds,
      firstCodes: r.firstCodes,
      config: server.config,
    };
  });
}

let upstreamRuns = 0;
async function cleanRun(target) {
  const relaying = target.name.includes("-relay");
  // A fresh upstream Postfix for each relay run, as postscreen's instance is fresh for each of
  // its runs: what an earlier run left there (dozens of idle smtpds exiting after a connection per
  // session, queue files) is not this run's cost, and spawning its smtpds is, as for postscreen.
  const upstream = relaying ? await startUpstream(join(tmp, `upstream-${++upstreamRuns}`)) : null;
  if (upstream) live.add(upstream);
  try {
    return await cleanRunAgainst(target, upstream);
  } finally {
    if (upstream) {
      await upstream.stop();
      live.delete(upstream);
      rmSync(join(tmp, `upstream-${upstreamRuns}`), { recursive: true, force: true });
    }
  }
}

async function cleanRunAgainst(target, upstream) {
  const relaying = upstream !== null;
  return await withServer(target, { greetWaitS: O.greetWait, cleanPrefix: CLEAN_PREFIX }, async (server) => {
    ensureGenerators(1);
    const pool = addrs(O.cleanAddrs, true);
    // Warm-up: every address passes the greet wait once, so the server treats it as known, and
    // sends one message, so that the processes behind the server run before the timed part:
    // postscreen's warm-up already started the smtpds of its chain, while a relay run's upstream
    // had none, and Postfix's master started them one by one in the timed part's first burst
    // (its CPU and the relay rows' p99).
    const warm = await generators[0].call("sessions", {
      port: server.port,
      addrs: pool,
      n: pool.length,
      concurrency: pool.length,
      size: 2048,
      timeoutMs: (O.greetWait + 20) * 1000,
    }, (O.greetWait + 40) * 1000);
    // Then sessions as the timed part's, which are what JSC's and V8's JIT compilers compile in
    // a server's first thousands of sessions, once per process start: without them the timed
    // part paid for that compiling (Bun's JITWorker thread, a quarter of mxscreen's CPU with
    // the first warm-up alone), a cost a server that runs for weeks does not have per session.
    const sessions = (n) =>
      generators[0].call("sessions", { port: server.port, addrs: pool, n, concurrency: 50, size: 2048, timeoutMs: 30_000 }, 600_000);
    if (O.warmN > 0) await sessions(O.warmN);
    await sleep(1000);
    const cpu0 = cpuMs(server.pids);
    const up0 = relaying ? cpuMs(upstream.pids) : 0;
    const byName = O.breakdown
      ? { server: cpuByName(server.pids, { threads: true }), upstream: relaying ? cpuByName(upstream.pids) : undefined }
      : undefined;
    const r = await sessions(O.cleanN);
    await sleep(1000); // Postfix's qmgr and discard finish the last messages
    const cpu = cpuMs(server.pids) - cpu0;
    const up = relaying ? cpuMs(upstream.pids) - up0 : 0;
    const pss = pssKiB(server.pids);
    const perSession = (ms) =>
      Object.fromEntries(Object.entries(ms).filter(([, v]) => v !== 0).map(([k, v]) => [k, Number((v / Math.max(1, r.ok)).toFixed(3))]));
    const breakdown = byName &&
      { server: perSession(byName.server.stop()), upstream: byName.upstream && perSession(byName.upstream.stop()) };
    return {
      n: r.n,
      ok: r.ok,
      warmOk: warm.ok,
      perS: r.ok / (r.elapsedMs / 1000),
      p50: r.p50,
      p99: r.p99,
      cpuPerSession: cpu / Math.max(1, r.ok),
      cpuWithUpstream: (cpu + up) / Math.max(1, r.ok),
      pssMiB: pss / 1024,
      errors: r.errors,
      warmErrors: warm.errors,
      config: server.config,
      breakdown,
    };
  });
}

function storeBench(runtime) {
  const bin = runtime === "deno" ? join(ROOT, "node_modules/deno/deno") : join(ROOT, "node_modules/bun/bin/bun.exe");
  const args = runtime === "deno" ? ["run", "-A", "bench/store.ts"] : ["bench/store.ts"];
  if (quick) args.push("--entries", "1000000", "--lookups", "500000", "--bans", "20");
  const r = spawnSync(bin, args, { cwd: ROOT, encoding: "utf8", timeout: 600_000 });
  const out = r.stdout ?? "";
  console.log(out.split("\n").map((l) => `  ${l}`).join("\n"));
  const ns = (fam) => Number(new RegExp(`^\\| ${fam} \\| (\\d+) \\|`, "m").exec(out)?.[1]);
  const prop = /^\| (\d+) ms \| (\d+) ms \| (\d+) ms \|/m.exec(out);
  return { ipv4: ns("ipv4"), ipv6: ns("ipv6"), p50: Number(prop?.[1]), p99: Number(prop?.[2]), max: Number(prop?.[3]) };
}

// -------------------------------------------------------------------------------------- main
const started = new Date();
let harakaDir = O.harakaDir;
const supportsProcesses = /MXSCREEN_PROCESSES/.test(readFileSync(join(ROOT, "src/config/config.ts"), "utf8"));
console.log(`# mxscreen side-by-side bench, ${started.toISOString()}`);
console.log(`command: ${O.command}`);
console.log(
  `machine: ${availableParallelism()} CPUs, ${process.platform}, node ${process.version}, network namespace ${process.env.MXBENCH_NETNS}`,
);
console.log(`MXSCREEN_PROCESSES in this build: ${supportsProcesses ? "yes" : "no (held rows past one process's limit are skipped)"}\n`);

let dns;
try {
  dns = await startDnsmasq(tmp);
  live.add(dns);
  if (!harakaDir || !existsSync(join(harakaDir, "node_modules/Haraka/bin/haraka"))) {
    throw new Error(`Haraka is not installed in ${harakaDir}`);
  }

  const mx = (name, runtime, mode, extra = {}) =>
    mxscreen(ROOT, runtime, mode, { name, upstreamUrl: UPSTREAM_URL, dns: dns.address, ...extra });
  const T = {
    postscreen: postscreen(),
    haraka: haraka(harakaDir),
    "mx-deno": mx("mx-deno", "deno", "spool"),
    "mx-bun": mx("mx-bun", "bun", "spool"),
    "mx-deno-relay": mx("mx-deno-relay", "deno", "relay"),
    "mx-bun-relay": mx("mx-bun-relay", "bun", "relay"),
    "mx-deno-relay-c0": mx("mx-deno-relay-c0", "deno", "relay", { upstreamPool: 0, tag: "a connection per session" }),
    "mx-bun-relay-c0": mx("mx-bun-relay-c0", "bun", "relay", { upstreamPool: 0, tag: "a connection per session" }),
    "mx-deno-relay-xf": mx("mx-deno-relay-xf", "deno", "relay", { identity: "xforward", tag: "XFORWARD" }),
    "mx-bun-relay-xf": mx("mx-bun-relay-xf", "bun", "relay", { identity: "xforward", tag: "XFORWARD" }),
    "mx-deno-w2": mx("mx-deno-w2", "deno", "spool", { workers: 2, tag: "workers 2" }),
    "mx-bun-w2": mx("mx-bun-w2", "bun", "spool", { workers: 2, tag: "workers 2" }),
    "mx-deno-p2": mx("mx-deno-p2", "deno", "spool", { workers: 0, processes: 2, tag: "processes 2 workers 0" }),
    "mx-bun-p2": mx("mx-bun-p2", "bun", "spool", { workers: 0, processes: 2, tag: "processes 2 workers 0" }),
  };
  const main = O.targets.map((t) => T[t]).filter(Boolean);

  if (has("held")) {
    for (const n of O.held) {
      const runs = [];
      for (const t of main) {
        if (t.name === "postscreen" || t.name === "haraka") {
          if (n > 19_000) continue; // past one process's limit: postscreen cannot by design; Haraka was asked at 19,000
          runs.push([t, t.name === "haraka" && n >= 18_000 ? { nodes: 2 } : { nodes: 1 }]);
        } else {
          if (n > 19_000 && !supportsProcesses) continue;
          runs.push([t, { processes: n > 19_000 ? Math.ceil(n / 18_000) : 1 }]);
        }
      }
      console.log(`## held ${n.toLocaleString("en")}, greet wait ${heldWaitS(n)} s`);
      for (let rep = 0; rep < (n >= 18_000 ? O.heldRepsLarge : O.heldReps); rep++) {
        for (const [t, variant] of runs) {
          try {
            record("held", String(n), t, await heldRun(t, n, variant));
          } catch (e) {
            console.log(`  held ${n} ${t.label}: FAILED ${e.message.split("\n")[0]}`);
          }
        }
      }
    }
  }
  if (has("pregreet")) {
    console.log(`## pregreet, ${O.pregreetN} clients, 200 at a time, greet wait ${O.greetWait} s`);
    for (let rep = 0; rep < O.reps; rep++) {
      for (const t of main) {
        try {
          record("pregreet", "", t, await pregreetRun(t));
        } catch (e) {
          console.log(`  pregreet ${t.label}: FAILED ${e.message.split("\n")[0]}`);
        }
      }
    }
  }
  const cleanTargets = [];
  if (has("clean")) {
    for (const name of O.targets) {
      cleanTargets.push(T[name]);
      if (T[`${name}-relay`]) cleanTargets.push(T[`${name}-relay`], T[`${name}-relay-c0`], T[`${name}-relay-xf`]);
    }
  }
  if (has("compare")) {
    for (const rt of ["deno", "bun"]) {
      if (!O.targets.includes(`mx-${rt}`)) continue;
      if (!cleanTargets.includes(T[`mx-${rt}`])) cleanTargets.push(T[`mx-${rt}`]);
      cleanTargets.push(T[`mx-${rt}-w2`]);
      if (supportsProcesses) cleanTargets.push(T[`mx-${rt}-p2`]);
    }
  }
  if (cleanTargets.length > 0) {
    console.log(`## clean, ${O.cleanN} sessions (2 KiB), 50 at a time from ${O.cleanAddrs} warmed-up addresses`);
    for (let rep = 0; rep < O.reps; rep++) {
      for (const t of cleanTargets.filter(Boolean)) {
        try {
          record("clean", "", t, await cleanRun(t));
        } catch (e) {
          console.log(`  clean ${t.label}: FAILED ${e.message.split("\n")[0]}`);
        }
      }
    }
  }
  if (has("lookup") || has("propagation")) {
    console.log("## store (bench/store.ts)");
    for (const rt of ["deno", "bun"]) record("store", "", T[`mx-${rt}`], storeBench(rt));
  }
} catch (e) {
  console.log(`bench: FAILED: ${e.stack ?? e}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}

// ---------------------------------------------------------------------------------------- table
const med = (phase, key, target, field) =>
  median(results.filter((r) => r.phase === phase && r.key === key && r.target === target).map((r) => r.values[field]));
const runsOf = (phase, key, target) => results.filter((r) => r.phase === phase && r.key === key && r.target === target);
const fmt = (
  x,
  digits = 0,
) => (Number.isFinite(x) ? x.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "–");
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : "–");
const COLS = ["postscreen", "haraka", "mx-deno", "mx-deno-relay", "mx-bun", "mx-bun-relay"];
const rows = [];
for (const r of results) if (r.phase === "clean") r.values.failed = r.values.n - r.values.ok;
const row = (scenario, metric, field, phase, key, digits, note = () => "") => {
  const v = Object.fromEntries(COLS.map((c) => [c, med(phase, key, c, field)]));
  if (COLS.every((c) => !Number.isFinite(v[c]))) return;
  const cell = (c) => (Number.isFinite(v[c]) ? fmt(v[c], digits) + note(c) : "–");
  rows.push(
    `| ${scenario} | ${metric} | ${COLS.map(cell).join(" | ")} | ${ratio(v["mx-bun"], v.postscreen)} | ${ratio(v["mx-bun"], v.haraka)} | ${
      ratio(v["mx-deno"], v.postscreen)
    } | ${ratio(v["mx-deno"], v.haraka)} |`,
  );
};
for (const n of O.held) {
  const s = `held ${n.toLocaleString("en")}`;
  const cfg = (c) => {
    const r = runsOf("held", String(n), c)[0];
    if (!r) return "";
    if (c === "haraka") return ` (${r.values.config})`;
    if (c.startsWith("mx-") && / processes/.test(r.values.config)) return ` (${r.values.config.split(",")[0]})`;
    return "";
  };
  row(s, "clients held in the greet wait", "held", "held", String(n), 0, cfg);
  row(s, "… of which got the 220- teaser", "teased", "held", String(n), 0);
  row(s, "server memory per held client, KiB (PSS)", "kibPerHeld", "held", String(n), 2);
  row(s, "new client's first byte while held, ms", "probeMs", "held", String(n), 1);
  row(s, "EHLO 250 + QUIT 221 after the wait", "ok", "held", String(n), 0);
  row(s, "dropped (no 250 to EHLO or no 221 to QUIT)", "dropped", "held", String(n), 0);
}
row("pregreet", "verdicts per second", "perS", "pregreet", "", 0);
row("pregreet", "server CPU ms per 1,000 connections", "cpuPer1000", "pregreet", "", 0);
row("pregreet", "… cold: the first round, on a fresh process", "coldCpuPer1000", "pregreet", "", 0);
row("pregreet", "time to verdict p50, ms", "p50", "pregreet", "", 0);
row("clean", "sessions per second", "perS", "clean", "", 0);
row("clean", "session p50, ms", "p50", "clean", "", 1);
row("clean", "session p99, ms", "p99", "clean", "", 1);
row("clean", "server CPU ms per session", "cpuPerSession", "clean", "", 2);
row("clean", "… with the upstream Postfix's CPU (relay)", "cpuWithUpstream", "clean", "", 2);
row("clean", "failed sessions", "failed", "clean", "", 0);
row("lookup", "ns per IPv4 lookup, 1,000,000 entries", "ipv4", "store", "", 0);
row("lookup", "ns per IPv6 lookup, 1,000,000 entries", "ipv6", "store", "", 0);
row("propagation", "ban A → B through sqld, p50 ms", "p50", "store", "", 0);
row("propagation", "ban A → B through sqld, p99 ms", "p99", "store", "", 0);

const table = [
  `| scenario | metric | postscreen | Haraka | mxscreen Deno spool | mxscreen Deno relay | mxscreen Bun spool | mxscreen Bun relay | Bun ÷ postscreen | Bun ÷ Haraka | Deno ÷ postscreen | Deno ÷ Haraka |`,
  `|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`,
  ...rows,
];
// The worker pool against reusePort processes (clean sessions, spool).
const cmpRows = [];
for (const rt of ["deno", "bun"]) {
  for (
    const [name, what] of [[`mx-${rt}`, "1 process, MXSCREEN_WORKERS=auto, the default (inline on 2 cores)"], [
      `mx-${rt}-w2`,
      "1 process, MXSCREEN_WORKERS=2 (bytes to Web Workers)",
    ], [`mx-${rt}-p2`, "MXSCREEN_PROCESSES=2, MXSCREEN_WORKERS=0 (reusePort)"]]
  ) {
    if (runsOf("clean", "", name).length === 0) continue;
    cmpRows.push(
      `| ${rt === "deno" ? "Deno" : "Bun"} | ${what} | ${fmt(med("clean", "", name, "perS"))} | ${
        fmt(med("clean", "", name, "p50"), 1)
      } | ${fmt(med("clean", "", name, "p99"), 1)} | ${fmt(med("clean", "", name, "cpuPerSession"), 2)} | ${
        fmt(med("clean", "", name, "pssMiB"), 0)
      } | ${fmt(median(runsOf("clean", "", name).map((r) => r.values.n - r.values.ok)))} |`,
    );
  }
}
// Warm upstream connections against one connection per session (clean sessions, relay).
const relayRows = [];
for (const rt of ["deno", "bun"]) {
  for (
    const [name, what] of [[`mx-${rt}-relay`, "warm connections (MXSCREEN_UPSTREAM_POOL default), XCLIENT"], [
      `mx-${rt}-relay-c0`,
      "a connection per session (MXSCREEN_UPSTREAM_POOL=0), XCLIENT",
    ], [`mx-${rt}-relay-xf`, "warm connections, XFORWARD (MXSCREEN_UPSTREAM_IDENTITY=xforward)"]]
  ) {
    if (runsOf("clean", "", name).length === 0) continue;
    const own = med("clean", "", name, "cpuPerSession");
    const chain = med("clean", "", name, "cpuWithUpstream");
    relayRows.push(
      `| ${rt === "deno" ? "Deno" : "Bun"} | ${what} | ${fmt(med("clean", "", name, "perS"))} | ${
        fmt(med("clean", "", name, "p99"), 1)
      } | ${fmt(own, 2)} | ${fmt(chain - own, 2)} | ${fmt(chain, 2)} | ${ratio(chain, med("clean", "", "postscreen", "cpuPerSession"))} |`,
    );
  }
}
console.log(
  `\n## Results: medians of ${O.reps} runs (held: ${O.heldReps}; held ≥ 18,000: ${O.heldRepsLarge}), ${
    started.toISOString().slice(0, 10)
  }\n`,
);
console.log(`\`${O.command}\`\n`);
console.log(table.join("\n"));
if (cmpRows.length > 0) {
  console.log("\n### mxscreen: worker pool vs reusePort processes (clean sessions, spool)\n");
  console.log(
    "| runtime | configuration | sessions/s | p50 ms | p99 ms | server CPU ms/session | PSS MiB after | failed |\n|---|---|---:|---:|---:|---:|---:|---:|",
  );
  console.log(cmpRows.join("\n"));
}
if (relayRows.length > 0) {
  console.log("\n### mxscreen relay: warm upstream connections vs one per session (clean sessions)\n");
  console.log(
    "| runtime | upstream connections | sessions/s | p99 ms | mxscreen CPU ms/session | upstream Postfix CPU ms/session | both | both ÷ postscreen's chain |\n|---|---|---:|---:|---:|---:|---:|---:|",
  );
  console.log(relayRows.join("\n"));
}
// Details a reader may want to check: what the verdicts were, and the error kinds.
console.log("\n### Details\n");
for (const r of results) {
  const v = r.values;
  if (r.phase === "pregreet") {
    console.log(`- pregreet ${r.label}: verdict kinds ${JSON.stringify(v.kinds)}, first reply codes ${JSON.stringify(v.firstCodes)}`);
  }
  if (r.phase === "held" && (v.dropped > 0 || v.passedEarly > 0)) {
    console.log(
      `- held ${r.key} ${r.label} (${v.config}): opened in ${
        (v.openMs / 1000).toFixed(1)
      } s, ${v.passedEarly} let in before the measurement, dropped ${v.dropped}: ${JSON.stringify(v.errors)}; probe "${v.probeLine}"`,
    );
  }
  if (r.phase === "clean" && (v.n !== v.ok || v.warmOk !== O.cleanAddrs)) {
    console.log(
      `- clean ${r.label}: ${v.n - v.ok} failed ${JSON.stringify(v.errors)}, warm-up ${v.warmOk}/${O.cleanAddrs} ${
        JSON.stringify(v.warmErrors)
      }`,
    );
  }
}
const heldCfg = [...new Set(results.filter((r) => r.phase === "held").map((r) => `${r.key} ${r.label}: ${r.values.config}`))];
if (heldCfg.length) console.log(`\nHeld configurations: ${heldCfg.join("; ")}.`);
if (argv.includes("--json")) writeFileSync(opt("json", ""), JSON.stringify(results, null, 1));
process.exit(process.exitCode ?? 0);
