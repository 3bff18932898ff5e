// The servers of the peers bench, each started fresh for every run in its own temp dir, on a
// loopback port inside the bench's network namespace, and stopped by its PID:
//   postscreen  Debian's Postfix, a private instance: postscreen → smtpd (pass) → discard
//   haraka      Haraka from npm: early_talker, rcpt_to.in_host_list, queue/discard
//   mxscreen    on Deno or Bun, spool or relay mode (relay: to the upstream Postfix below)
// plus the long-lived helpers: dnsmasq (NXDOMAIN for everything but the bench domain) and the
// upstream Postfix smtpd that mxscreen relays to.
import { spawn } from "node:child_process";
import { cpSync, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { layOutPostfix } from "../test/helpers/postfix-layout.mjs";

export const DOMAIN = "bench.example";
export const PORTS = { dns: 53, upstream: 2700, server: 2600 };
/** Where mxscreen relays to: the upstream Postfix that each relay run starts afresh (startUpstream). */
export const UPSTREAM_URL = `smtp://127.0.0.1:${PORTS.upstream}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function reachable(port) {
  return new Promise((resolve) => {
    const s = connect({ port, host: "127.0.0.1", localAddress: "127.0.0.1" });
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

async function waitFor(what, test, timeoutMs, exited) {
  const deadline = Date.now() + timeoutMs;
  while (!(await test())) {
    if (exited?.()) throw new Error(`${what} exited at start`);
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Stops a process by its PID: SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
async function stopChild(child, graceMs = 10_000, pid = child.pid) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    // gone
  }
  const timer = setTimeout(() => {
    try {
      process.kill(pid, "SIGKILL");
      if (pid !== child.pid) process.kill(child.pid, "SIGKILL");
    } catch {
      // gone
    }
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

// ------------------------------------------------------------------------------------- dnsmasq
export async function startDnsmasq(dir) {
  const log = createWriteStream(join(dir, "dnsmasq.log"));
  const child = spawn("dnsmasq", [
    "--no-daemon",
    "--no-resolv",
    "--no-hosts",
    "--conf-file=/dev/null",
    "--pid-file=",
    `--port=${PORTS.dns}`,
    "--listen-address=127.0.0.1",
    "--bind-interfaces",
    // Every name is NXDOMAIN (nothing is forwarded) but the bench domain, which can receive mail.
    "--address=/#/",
    `--mx-host=${DOMAIN},mail.${DOMAIN},10`,
    `--host-record=mail.${DOMAIN},192.0.2.25`,
    `--host-record=client.${DOMAIN},192.0.2.26`,
    "--cache-size=10000",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  await waitFor(
    "dnsmasq",
    async () => existsSync(join(dir, "dnsmasq.log")) && /started, version/.test(readFileSync(join(dir, "dnsmasq.log"), "utf8")),
    5000,
    () => child.exitCode !== null,
  );
  return { address: `127.0.0.1:${PORTS.dns}`, stop: () => stopChild(child) };
}

// ------------------------------------------------------------------------------------- Postfix
async function startPostfix(dir, listeners, settings) {
  const maillog = layOutPostfix(dir, listeners, [
    `mydestination = ${DOMAIN}`,
    "local_recipient_maps =",
    "local_transport = discard:",
    "mynetworks = 127.0.0.1/32",
    // smtpd does not look up client names either (the smtp client has no DNS already).
    "smtpd_peername_lookup = no",
    // No limit of Postfix's own may be the bottleneck: connection counts and rates off, many processes.
    "default_process_limit = 500",
    "smtpd_client_connection_count_limit = 0",
    "smtpd_client_connection_rate_limit = 0",
    "smtpd_client_message_rate_limit = 0",
    "smtpd_client_recipient_rate_limit = 0",
    "smtpd_client_new_tls_session_rate_limit = 0",
    "smtpd_client_auth_rate_limit = 0",
    "smtpd_client_event_limit_exceptions = 127.0.0.0/8",
    "smtpd_banner = $myhostname ESMTP",
    ...settings,
  ]);
  const out = createWriteStream(join(dir, "start-fg.log"));
  const child = spawn("postfix", ["-c", join(dir, "etc"), "start-fg"], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  await waitFor("postfix", async () => /daemon started/.test(readFileSync(maillog, "utf8")), 20_000, () => child.exitCode !== null)
    .catch(async (e) => {
      await sleep(200);
      throw new Error(
        `${e.message}: ${readFileSync(join(dir, "start-fg.log"), "utf8").slice(-1500)} ${readFileSync(maillog, "utf8").slice(-1500)}`,
      );
    });
  const masterPid = Number(readFileSync(join(dir, "queue", "pid", "master.pid"), "utf8").trim());
  return {
    pids: [masterPid],
    maillog,
    stop: () => stopChild(child, 15_000, masterPid),
  };
}

/**
 * The MTA behind mxscreen in relay mode, set up as the README's recipe says: a plain smtpd that
 * accepts XCLIENT and XFORWARD from loopback and rewrites no headers for mxscreen's connections
 * (local_header_rewrite_clients empty: Postfix judges that by the TCP peer, mxscreen's loopback
 * address, so it would rewrite every relayed message's headers as a local client's, which
 * postscreen's smtpd does not do for the same clients), → discard.
 */
export async function startUpstream(dir) {
  mkdirSync(dir);
  const pf = await startPostfix(dir, [`127.0.0.1:${PORTS.upstream} inet n - n - - smtpd`], [
    "myhostname = upstream.bench.example",
    "smtpd_authorized_xclient_hosts = 127.0.0.0/8",
    "smtpd_authorized_xforward_hosts = 127.0.0.0/8",
    "local_header_rewrite_clients =",
  ]);
  await waitFor("upstream smtpd", () => reachable(PORTS.upstream), 10_000);
  return { ...pf, url: UPSTREAM_URL };
}

// --------------------------------------------------------------------------------- the targets
/**
 * A target: { name, label, start(dir, { greetWaitS, cleanPrefix, variant }) → { port, pids, stop } }.
 * `variant` selects a configuration for held counts (Haraka nodes, mxscreen processes).
 */
export function postscreen() {
  return {
    name: "postscreen",
    label: "postscreen + smtpd (Postfix)",
    async start(dir, { greetWaitS }) {
      mkdirSync(dir);
      const pf = await startPostfix(dir, [
        `127.0.0.1:${PORTS.server} inet n - n - 1 postscreen`,
        "smtpd pass - - n - - smtpd",
      ], [
        "myhostname = postscreen.bench.example",
        "postscreen_access_list =",
        "postscreen_dnsbl_sites =",
        "postscreen_greet_action = enforce",
        `postscreen_greet_wait = ${greetWaitS}s`,
        "postscreen_cache_map = btree:$data_directory/postscreen_cache",
        "postscreen_client_connection_count_limit = 0",
        "postscreen_pre_queue_limit = 100000",
        "postscreen_post_queue_limit = 100000",
      ]);
      await waitFor("postscreen", () => reachable(PORTS.server), 10_000);
      return { port: PORTS.server, pids: pf.pids, stop: pf.stop, config: "postscreen (1 process) → smtpd ≤ 500 → discard" };
    },
  };
}

export function haraka(harakaDir) {
  return {
    name: "haraka",
    label: "Haraka",
    async start(dir, { greetWaitS, cleanPrefix, nodes = 1 }) {
      // Haraka's own defaults first (connection.ini and the rest), then the bench's files over them.
      cpSync(join(harakaDir, "node_modules/Haraka/config"), join(dir, "config"), { recursive: true });
      mkdirSync(join(dir, "plugins"), { recursive: true });
      const cfg = (name, text) => writeFileSync(join(dir, "config", name), text);
      // Haraka always runs as a cluster master and `nodes` workers (unset means 1).
      cfg("smtp.ini", `[main]\nlisten=127.0.0.1:${PORTS.server}\nnodes=${nodes}\n`);
      cfg("me", `haraka.${DOMAIN}\n`);
      cfg("host_list", `${DOMAIN}\n`);
      cfg("log.ini", "[main]\nlevel=notice\ntimestamps=false\nformat=default\n");
      cfg("early_talker.ini", `[main]\npause=${greetWaitS}\nreject=true\n\n[ip_whitelist]\n${cleanPrefix}\n`);
      cfg("plugins", ["bench_not_local", "early_talker", "rcpt_to.in_host_list", "queue/discard"].join("\n") + "\n");
      // early_talker skips clients on loopback and private addresses; the bench's clients come
      // from 127.x.y.z, so this shim (first in the list) makes them look remote. Nothing else changes.
      writeFileSync(
        join(dir, "plugins", "bench_not_local.js"),
        [
          "exports.register = function () { this.register_hook('connect_init', 'not_local') }",
          "exports.not_local = (next, connection) => {",
          "  connection.remote.is_local = false",
          "  connection.remote.is_private = false",
          "  next()",
          "}",
          "",
        ].join("\n"),
      );
      const out = createWriteStream(join(dir, "haraka.log"));
      const child = spawn(process.execPath, [join(harakaDir, "node_modules/Haraka/bin/haraka"), "-c", dir], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, YES_REALLY_DO_DISCARD: "1" },
      });
      child.stdout.pipe(out);
      child.stderr.pipe(out);
      const listening = () => (readFileSync(join(dir, "haraka.log"), "utf8").match(/worker \d+ listening on/g) ?? []).length >= nodes;
      await waitFor("haraka", async () => existsSync(join(dir, "haraka.log")) && listening(), 30_000, () => child.exitCode !== null);
      await waitFor("haraka port", () => reachable(PORTS.server), 10_000);
      return {
        port: PORTS.server,
        pids: [child.pid],
        stop: () => stopChild(child),
        config: `nodes=${nodes}: master + ${nodes} worker${nodes > 1 ? "s" : ""}`,
      };
    },
  };
}

/**
 * mxscreen, the runtime started directly (as src/cli/launch.mjs would, minus the Node wrapper).
 * mode: "spool" | "relay". Options: workers (default `auto`), processes (MXSCREEN_PROCESSES),
 * upstreamPool (MXSCREEN_UPSTREAM_POOL; default: mxscreen's), identity (MXSCREEN_UPSTREAM_IDENTITY; xclient).
 */
/** MXBENCH_DENO_FLAGS, MXBENCH_BUN_FLAGS: flags added to the runtime's, for profiling a run (`--cpu-prof --cpu-prof-dir=DIR`). */
function extraFlags(runtime) {
  return (process.env[`MXBENCH_${runtime.toUpperCase()}_FLAGS`] ?? "").split(/\s+/).filter(Boolean);
}

export function mxscreen(
  root,
  runtime,
  mode,
  { name, upstreamUrl, dns, workers, processes = 1, upstreamPool, identity = "xclient", tag = "" } = {},
) {
  const suffix = tag ? `, ${tag}` : "";
  return {
    name,
    label: `mxscreen ${runtime === "deno" ? "Deno" : "Bun"} ${mode}${suffix}`,
    async start(dir, { greetWaitS, processes: p = processes }) {
      mkdirSync(join(dir, "spool"), { recursive: true });
      const perms = JSON.parse(readFileSync(join(root, "src/net/runtime/deno-permissions.json"), "utf8"));
      const [bin, args] = runtime === "deno"
        ? [join(root, "node_modules/deno/deno"), ["run", ...perms, ...extraFlags("deno"), join(root, "src/main.ts")]]
        : [join(root, "node_modules/bun/bin/bun.exe"), ["--no-env-file", ...extraFlags("bun"), join(root, "src/main.ts")]];
      const env = {
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MXSCREEN_"))),
        MXSCREEN_LISTEN: `127.0.0.1:${PORTS.server}`,
        MXSCREEN_ADMIN_LISTEN: "",
        MXSCREEN_DB_URL: `file:${join(dir, "db")}`,
        MXSCREEN_QUEUE_FILE: join(dir, "queue.jsonl"),
        MXSCREEN_HOSTNAME: `mx.${DOMAIN}`,
        MXSCREEN_NODE: "bench",
        MXSCREEN_ACCEPT_DOMAINS: DOMAIN,
        MXSCREEN_DNS: dns,
        MXSCREEN_GREET_WAIT: `${Math.round(greetWaitS * 1000)}ms`,
        // postscreen's greet wait is fixed in the bench (no stress value); the same here.
        MXSCREEN_GREET_WAIT_STRESS: `${Math.round(greetWaitS * 1000)}ms`,
        MXSCREEN_MAX_CONN_PER_CLIENT: "19000",
        MXSCREEN_MAX_CONN_PER_PREFIX: "19000",
        MXSCREEN_MAX_CONNECTIONS: "19000",
        MXSCREEN_SPOOL_DIR: join(dir, "spool"),
        ...(workers !== undefined ? { MXSCREEN_WORKERS: String(workers) } : {}),
        ...(p > 1 ? { MXSCREEN_PROCESSES: String(p) } : {}),
        ...(mode === "relay" ? { MXSCREEN_UPSTREAM: upstreamUrl, MXSCREEN_UPSTREAM_IDENTITY: identity } : {}),
        ...(upstreamPool !== undefined ? { MXSCREEN_UPSTREAM_POOL: String(upstreamPool) } : {}),
      };
      const out = createWriteStream(join(dir, "mxscreen.log"));
      const child = spawn(bin, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env });
      child.stdout.pipe(out);
      child.stderr.pipe(out);
      await waitFor(`mxscreen ${runtime}`, () => reachable(PORTS.server), 30_000, () => child.exitCode !== null)
        .catch((e) => {
          throw new Error(
            `${e.message}\n${existsSync(join(dir, "mxscreen.log")) ? readFileSync(join(dir, "mxscreen.log"), "utf8").slice(-2000) : ""}`,
          );
        });
      if (p > 1) await sleep(2000); // the other processes' listeners
      const config = `${p > 1 ? `${p} processes` : "1 process"}, workers ${workers ?? "auto"}`;
      return { port: PORTS.server, pids: [child.pid], stop: () => stopChild(child, 40_000), config, log: join(dir, "mxscreen.log") };
    },
  };
}
