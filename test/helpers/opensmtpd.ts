import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { onFreePort } from "./on-free-port.ts";
import { maildirMessages, requireRoot, runPrivate, spawnPrivate, unpacked } from "./private-mta.ts";
import { freePort, tempDir } from "./server.ts";

const OPENSMTPD = "opensmtpd";
/** The users Debian's smtpd drops to (its postinst creates them; test/run-all.mjs does here). */
const DELIVERY_USER = "opensmtpd";

export interface OpenSmtpdInstance {
  /** Its listener on 127.0.0.1, plain SMTP. */
  readonly port: number;
  /** smtpd's own log (it runs with -d: to stderr), as lines. */
  readonly log: string[];
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** `smtpctl schedule all`: every envelope waiting for a retry is tried now. */
  scheduleAll(): Promise<void>;
  /** SIGTERM to smtpd's parent process by PID; its privilege-separated children exit with it. */
  stop(): Promise<void>;
}

/**
 * A private OpenSMTPD: its compiled-in paths (/var/spool/smtpd, the control socket in /run, the
 * chroot in /var/lib/opensmtpd/empty, the MDAs in /usr/libexec/opensmtpd) are mounted from the
 * test's directory and the unpacked package, in a mount namespace of smtpd's own.
 */
async function launch(port: number, config: (dir: string) => readonly string[]): Promise<OpenSmtpdInstance> {
  requireRoot("OpenSMTPD");
  const smtpd = unpacked(OPENSMTPD, "usr/sbin/smtpd");
  const smtpctl = unpacked(OPENSMTPD, "usr/sbin/smtpctl");
  const dir = tempDir("mxscreen-opensmtpd-");
  chmodSync(dir, 0o755);
  const id = spawnSync("id", ["-u", DELIVERY_USER], { encoding: "utf8" });
  if (id.status !== 0) {
    throw new Error(
      `there is no ${DELIVERY_USER} user, which Debian's OpenSMTPD runs as: run \`node test/run-all.mjs interop\` once as root, which adds it`,
    );
  }
  for (const sub of ["var-spool/smtpd", "run", "var-lib/opensmtpd/empty", "mail"]) mkdirSync(join(dir, sub), { recursive: true });
  // smtpd refuses a spool whose mode is not exactly this.
  chmodSync(join(dir, "var-spool/smtpd"), 0o711);
  chownSync(join(dir, "mail"), Number(id.stdout.trim()), -1);
  const conf = join(dir, "smtpd.conf");
  writeFileSync(conf, [`listen on 127.0.0.1 port ${port}`, ...config(dir), ""].join("\n"), { mode: 0o600 });
  const binds: [string, string][] = [
    [join(dir, "var-spool"), "/var/spool"],
    [join(dir, "run"), "/run"],
    [join(dir, "var-lib"), "/var/lib"],
    [unpacked(OPENSMTPD, "usr/libexec"), "/usr/libexec"],
  ];
  const daemon = spawnPrivate(dir, smtpd, ["-d", "-f", conf], binds);
  // smtpd says nothing when its listeners are up: it is ready when its port answers.
  const ready = Date.now() + 10_000;
  while (!(await answers(port))) {
    if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) {
      throw new Error(`OpenSMTPD exited at start:\n${daemon.output.lines.join("\n")}`);
    }
    if (Date.now() > ready) {
      throw new Error(`OpenSMTPD did not listen on 127.0.0.1:${port} within 10 s:\n${daemon.output.lines.join("\n")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    port,
    log: daemon.output.lines,
    waitForLine: (pattern, timeoutMs = 15_000) => daemon.output.waitFor(pattern, timeoutMs),
    async scheduleAll() {
      // smtpctl talks to the control socket in smtpd's namespace: enter that one.
      const result = await runPrivate(dir, "nsenter", ["--target", String(daemon.child.pid), "--mount", smtpctl, "schedule", "all"], {
        timeoutMs: 10_000,
      });
      if (result.code !== 0) throw new Error(`smtpctl schedule all exited with ${result.code}: ${result.output}`);
    },
    stop: daemon.stop,
  };
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/**
 * OpenSMTPD as the sending MTA: whatever it is handed on its port is relayed to
 * 127.0.0.1:`relayPort` from `bindAddress`, with HELO `heloName`.
 */
export async function startOpenSmtpdSender(relayPort: number, bindAddress: string, heloName: string): Promise<OpenSmtpdInstance> {
  return await onFreePort((port) =>
    launch(port, () => [
      `action "mxscreen" relay host smtp://127.0.0.1:${relayPort} src ${bindAddress} helo ${heloName}`,
      `match from any for any action "mxscreen"`,
    ])
  );
}

export interface UpstreamOpenSmtpd extends OpenSmtpdInstance {
  /** The same smtpd on another port, wanting a PROXY v2 header first (`proxy-v2`). */
  readonly proxyPort: number;
  /** The messages delivered to its maildir, in no particular order. */
  delivered(): string[];
}

/**
 * OpenSMTPD as the MTA behind mxscreen: someone@ and postmaster@example.org are delivered to a
 * maildir (as the opensmtpd user); any other recipient gets its own `550 Invalid recipient`.
 */
export async function startUpstreamOpenSmtpd(): Promise<UpstreamOpenSmtpd> {
  const proxyPort = await freePort();
  let mail = "";
  const instance = await onFreePort((port) =>
    launch(port, (dir) => {
      mail = join(dir, "mail");
      return [
        `listen on 127.0.0.1 port ${proxyPort} proxy-v2`,
        `table known { "someone@example.org", "postmaster@example.org" }`,
        `table mailbox { "someone@example.org" = "${DELIVERY_USER}", "postmaster@example.org" = "${DELIVERY_USER}" }`,
        `action "local" maildir "${mail}" virtual <mailbox>`,
        `match from any for rcpt-to <known> action "local"`,
      ];
    })
  );
  return {
    ...instance,
    proxyPort,
    delivered: () => maildirMessages(mail),
  };
}
