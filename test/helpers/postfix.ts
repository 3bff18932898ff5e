import { execFileSync, spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { onCleanup } from "../harness.ts";
import { freePort, tempDir } from "./server.ts";

export interface RunningPostfix {
  /** smtpd with XCLIENT allowed from loopback. */
  readonly port: number;
  /** smtpd that wants a PROXY v2 header first (smtpd_upstream_proxy_protocol = haproxy). */
  readonly proxyPort: number;
  /** smtpd that hangs up on a client idle for 2 s (smtpd_timeout), to fail a message midway. */
  readonly impatientPort: number;
  /** Postfix's own log so far. */
  log(): string;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

const DAEMONS = "/usr/lib/postfix/sbin";

/**
 * A private Debian Postfix on loopback ports, its configuration in a temp dir: local recipients
 * someone@ and postmaster@example.org (others: 550 5.1.1), delivered to the discard transport,
 * its log on master's stdout. Runs `master -d`, so it is stopped by the PID we started.
 */
export async function startPostfix(): Promise<RunningPostfix> {
  const dir = tempDir("mxscreen-postfix-");
  chmodSync(dir, 0o755);
  const [port, proxyPort, impatientPort] = [await freePort(), await freePort(), await freePort()];
  const conf = join(dir, "conf");
  const data = join(dir, "data");
  mkdirSync(conf);
  mkdirSync(data);
  mkdirSync(join(dir, "queue"));
  try {
    const uid = Number(execFileSync("id", ["-u", "postfix"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postfix"], { encoding: "utf8" }).trim());
    chownSync(data, uid, gid);
  } catch (error) {
    throw new Error(`Postfix is not installed (no postfix user): apt-get install postfix (${(error as Error).message})`);
  }
  writeFileSync(join(conf, "main.cf"), [
    "compatibility_level = 3.6",
    `queue_directory = ${join(dir, "queue")}`,
    `data_directory = ${data}`,
    "command_directory = /usr/sbin",
    `daemon_directory = ${DAEMONS}`,
    "mail_owner = postfix",
    "setgid_group = postdrop",
    "myhostname = upstream.test.example",
    "mydomain = test.example",
    "myorigin = test.example",
    "mydestination = example.org",
    "inet_interfaces = loopback-only",
    "inet_protocols = ipv4",
    "mynetworks = 127.0.0.0/8",
    "local_recipient_maps = inline:{ someone@example.org=ok, postmaster@example.org=ok }",
    "local_transport = discard:",
    "message_size_limit = 52428800",
    "smtpd_authorized_xclient_hosts = 127.0.0.0/8",
    `maillog_file = ${join(dir, "maillog")}`,
    `maillog_file_prefixes = /var, /dev/stdout, ${dir}`,
    "smtpd_banner = $myhostname ESMTP upstream",
    "alias_maps =",
    "alias_database =",
    "biff = no",
    "",
  ].join("\n"));
  writeFileSync(join(conf, "master.cf"), [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    `127.0.0.1:${proxyPort} inet n - n - - smtpd -o smtpd_upstream_proxy_protocol=haproxy`,
    `127.0.0.1:${impatientPort} inet n - n - - smtpd -o smtpd_timeout=2s`,
    "pickup unix n - n 60 1 pickup",
    "cleanup unix n - n - 0 cleanup",
    "qmgr unix n - n 300 1 qmgr",
    "rewrite unix - - n - - trivial-rewrite",
    "bounce unix - - n - 0 bounce",
    "defer unix - - n - 0 bounce",
    "trace unix - - n - 0 bounce",
    "verify unix - - n - 1 verify",
    "proxymap unix - - n - - proxymap",
    "error unix - - n - - error",
    "discard unix - - n - - discard",
    "anvil unix - - n - 1 anvil",
    "scache unix - - n - 1 scache",
    "postlog unix-dgram n - n - 1 postlogd",
    "",
  ].join("\n"));
  // `postfix check` creates the queue's directories with their owners, as `postfix start` would.
  execFileSync("postfix", ["-c", conf, "check"], { stdio: "ignore" });
  const child = spawn(join(DAEMONS, "master"), ["-c", conf, "-d"], { stdio: ["ignore", "pipe", "pipe"] });
  // A file, not master's stdout: Bun hands children sockets, which postlogd cannot reopen.
  let early = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => early += d);
  child.stderr!.setEncoding("utf8").on("data", (d: string) => early += d);
  const logFile = join(dir, "maillog");
  const readLog = () => {
    try {
      return readFileSync(logFile, "utf8");
    } catch {
      return early;
    }
  };
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGTERM");
    await exited;
  };
  onCleanup(stop);
  const deadline = Date.now() + 15_000;
  while (!(await reachable(port)) || !(await reachable(proxyPort))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`Postfix did not start: ${readLog()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    proxyPort,
    impatientPort,
    log: readLog,
    async waitForLog(pattern, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const log = readLog();
        const line = log.split("\n").find((l) => pattern.test(l));
        if (line) return line;
        if (Date.now() > end) throw new Error(`no Postfix log line matching ${pattern} within ${timeoutMs} ms:\n${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop,
  };
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}
