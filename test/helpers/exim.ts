import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { onCleanup } from "../harness.ts";
import type { LineLog } from "./line-log.ts";
import { onFreePort } from "./on-free-port.ts";
import { followFile, maildirMessages, type PrivateProcess, requireRoot, runPrivate, spawnPrivate, unpacked } from "./private-mta.ts";
import { freePort, tempDir } from "./server.ts";

const EXIM = "exim4-daemon-heavy";
/** The user Debian's Exim is built to run as (EXIM_USER=ref:Debian-exim); test/run-all.mjs creates it. */
const EXIM_USER = "Debian-exim";

interface Layout {
  readonly dir: string;
  readonly config: string;
  readonly mainlog: LineLog;
  /** Runs this instance's exim binary with `-C` its configuration, privately, to its end. */
  exim(args: readonly string[], input?: string): Promise<{ code: number | null; output: string }>;
}

/**
 * Lays out a private Exim in a temp dir: its configuration (owned by root, as Exim wants before
 * it keeps root for `-C`), spool and logs owned by Debian-exim, the pid file inside. No DNS:
 * no host_lookup, no ident, no DANE, routes to IP addresses only.
 */
function layOut(configuration: (dir: string) => readonly string[]): Layout {
  requireRoot("Exim");
  const binary = unpacked(EXIM, "usr/sbin/exim4");
  const dir = tempDir("mxscreen-exim-");
  chmodSync(dir, 0o755);
  const id = spawnSync("id", ["-u", EXIM_USER], { encoding: "utf8" });
  const uid = Number(id.stdout.trim());
  if (id.status !== 0 || !Number.isInteger(uid)) {
    throw new Error(
      `there is no ${EXIM_USER} user, which Debian's Exim runs as: run \`node test/run-all.mjs interop\` once as root, which adds it`,
    );
  }
  for (const sub of ["spool", "log", "mail"]) {
    mkdirSync(join(dir, sub));
    chownSync(join(dir, sub), uid, -1);
  }
  const config = join(dir, "exim.conf");
  writeFileSync(
    config,
    [
      `exim_path = ${binary}`,
      `spool_directory = ${dir}/spool`,
      `log_file_path = ${dir}/log/%slog`,
      `pid_file_path = ${dir}/exim.pid`,
      "keep_environment =",
      "host_lookup =",
      "rfc1413_hosts =",
      "tls_advertise_hosts =",
      "deliver_drop_privilege = true",
      "log_selector = +pid +proxy +incoming_port +incoming_interface +smtp_connection +received_recipients +smtp_confirmation +queue_run",
      ...configuration(dir),
      "",
    ].join("\n"),
    { mode: 0o644 },
  );
  const mainlog = followFile(join(dir, "log", "mainlog"), "Exim mainlog", () => {
    try {
      return `\npaniclog:\n${readFileSync(join(dir, "log", "paniclog"), "utf8")}`;
    } catch {
      return "";
    }
  });
  return {
    dir,
    config,
    mainlog,
    exim: (args, input) => runPrivate(dir, binary, ["-C", config, ...args], { input }),
  };
}

export interface EximSender {
  readonly log: string[];
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Hands Exim a message as a local sendmail caller (`-odi -oi`): it is delivered before this resolves. */
  submit(from: string, to: string, message: string): Promise<void>;
  /** A forced queue run (`-qff`): anything deferred is tried again now, retry times or not. Once per instance. */
  runQueue(): Promise<void>;
  /** How many messages Exim's queue holds (`-bpc`). */
  queued(): Promise<number>;
}

/**
 * Exim as the sending MTA: every address is routed by a manualroute router to 127.0.0.1:`relayPort`,
 * its smtp transport connecting from `bindAddress` with HELO `heloName`. No daemon: messages are
 * submitted and queue runs made by command.
 */
export function startEximSender(relayPort: number, bindAddress: string, heloName: string): EximSender {
  const exim = layOut(() => [
    `primary_hostname = ${heloName}`,
    "qualify_domain = example.net",
    "begin routers",
    "mxscreen:",
    "  driver = manualroute",
    "  route_list = * 127.0.0.1",
    // 127.0.0.1 is this host: send there all the same.
    "  self = send",
    "  transport = mxscreen",
    "begin transports",
    "mxscreen:",
    "  driver = smtp",
    `  port = ${relayPort}`,
    `  interface = ${bindAddress}`,
    `  helo_data = ${heloName}`,
    "  allow_localhost",
    "  hosts_avoid_tls = *",
    "  hosts_try_dane =",
    "begin retry",
    "* * F,2h,15m; G,16h,1h,1.5; F,4d,6h",
  ]);
  const run = async (what: string, args: readonly string[], input?: string) => {
    const result = await exim.exim(args, input);
    if (result.code !== 0) {
      throw new Error(`exim ${what} exited with ${result.code}: ${result.output}\nmainlog:\n${exim.mainlog.lines.join("\n")}`);
    }
    return result.output;
  };
  return {
    log: exim.mainlog.lines,
    waitForLine: (pattern, timeoutMs = 15_000) => exim.mainlog.waitFor(pattern, timeoutMs),
    async submit(from, to, message) {
      await run("-odi", ["-odi", "-oi", "-f", from, to], message);
    },
    async runQueue() {
      await run("-qff", ["-qff"]);
      await exim.mainlog.waitFor(/End queue run: /, 5_000);
    },
    async queued() {
      return Number((await run("-bpc", ["-bpc"])).trim());
    },
  };
}

export interface UpstreamExim {
  /** Plain SMTP on 127.0.0.1. */
  readonly port: number;
  /** The same daemon, wanting a PROXY header (hosts_proxy) from loopback clients on this port. */
  readonly proxyPort: number;
  readonly log: string[];
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** The messages delivered to its mailbox (a maildir), in no particular order. */
  delivered(): string[];
  /**
   * The PID of the process serving the SMTP session from `address` (logged by the connect ACL):
   * Exim forks one per connection, and stopping the daemon leaves them running.
   */
  sessionPid(address: string): Promise<number>;
  /**
   * Stops the daemon and every session process it logged, each by its PID: SIGTERM, on which a
   * session says `421` and closes, or SIGKILL, on which the connection just ends.
   */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
}

/**
 * Exim as the MTA behind mxscreen: local recipients someone@ and postmaster@example.org, into a
 * maildir; anyone else at example.org gets Exim's own `550 Unrouteable address`; other domains
 * are refused.
 */
export async function startUpstreamExim(): Promise<UpstreamExim> {
  const proxyPort = await freePort();
  return await onFreePort(async (port) => {
    const exim = layOut((dir) => [
      "primary_hostname = upstream.exim.test",
      "qualify_domain = example.org",
      `daemon_smtp_ports = ${port} : ${proxyPort}`,
      `local_interfaces = <; 127.0.0.1.${port} ; 127.0.0.1.${proxyPort}`,
      // hosts_proxy names clients, not ports: only the proxy port's clients must send the header.
      `hosts_proxy = \${if ={$received_port}{${proxyPort}}{127.0.0.0/8}{}}`,
      "message_size_limit = 50M",
      "acl_smtp_connect = connect",
      "acl_smtp_rcpt = rcpt",
      "begin acl",
      "connect:",
      "  accept logwrite = session of [$sender_host_address]:$sender_host_port in pid $pid",
      "rcpt:",
      "  deny !domains = example.org",
      "       message = relay not permitted",
      "  require verify = recipient",
      "  accept",
      "begin routers",
      "mailbox:",
      "  driver = accept",
      "  domains = example.org",
      "  local_parts = someone : postmaster",
      "  transport = mailbox",
      "begin transports",
      "mailbox:",
      "  driver = appendfile",
      `  directory = ${dir}/mail`,
      "  maildir_format",
      `  user = ${EXIM_USER}`,
      "begin retry",
      "* * F,2h,15m",
    ]);
    const mail = join(exim.dir, "mail");
    const daemon: PrivateProcess = spawnPrivate(exim.dir, unpacked(EXIM, "usr/sbin/exim4"), ["-C", exim.config, "-bdf"]);
    const stop = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM") => {
      const pids = exim.mainlog.lines.flatMap((line) => /session of \S+ in pid (\d+)$/.exec(line)?.[1] ?? []).map(Number);
      await daemon.stop(signal);
      for (const pid of pids) {
        try {
          // A session's PID may have gone and been reused: only a process of this instance's daemon (forked, same command line) is signalled.
          if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(exim.config)) process.kill(pid, signal);
        } catch {
          // That session had ended already.
        }
      }
    };
    onCleanup(() => stop());
    await Promise.race([
      exim.mainlog.waitFor(/daemon started/, 15_000),
      daemon.exited.then(() => {
        throw new Error(`Exim exited at start: ${daemon.output.lines.join("\n")}\n${exim.mainlog.lines.join("\n")}`);
      }),
    ]);
    return {
      port,
      proxyPort,
      log: exim.mainlog.lines,
      waitForLine: (pattern, timeoutMs = 15_000) => exim.mainlog.waitFor(pattern, timeoutMs),
      delivered: () => maildirMessages(mail),
      async sessionPid(address) {
        const line = await exim.mainlog.waitFor(new RegExp(`session of \\[${address.replace(/\./g, "\\.")}\\]:\\d+ in pid (\\d+)`), 10_000);
        return Number(/in pid (\d+)/.exec(line)![1]);
      },
      stop,
    };
  });
}
