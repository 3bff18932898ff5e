import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { onCleanup } from "../harness.ts";
import { LineLog } from "./line-log.ts";
import { onFreePort } from "./on-free-port.ts";
import { layOutPostfix } from "./postfix-layout.mjs";
import { freePort, tempDir } from "./server.ts";

export interface PostfixInstance {
  /** Its smtpd, on 127.0.0.1, to hand it mail to send. */
  readonly port: number;
  /** Its queue_directory: incoming/ holds a message while it is being received. */
  readonly queueDir: string;
  readonly log: string[];
  /** Resolves with the first log line (present or future) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** `postqueue -f`: attempt every deferred message now, as its next retry would. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A private instance of Debian's Postfix (run as root, as Postfix requires) whose smtp client
 * relays everything to `relayPort` from `bindAddress`, with DNS off: the real MTA a sender
 * would be. `settings`: more main.cf lines (a queue that retries within seconds).
 */
export async function startPostfix(
  relayPort: number,
  bindAddress: string,
  heloName: string,
  settings: readonly string[] = [],
): Promise<PostfixInstance> {
  return await onFreePort((port) =>
    launch([`127.0.0.1:${port} inet n - n - - smtpd`], [
      `myhostname = ${heloName}`,
      "mydestination =",
      `relayhost = [127.0.0.1]:${relayPort}`,
      `smtp_bind_address = ${bindAddress}`,
      `smtp_helo_name = ${heloName}`,
      "local_transport = error:no local delivery",
      "smtpd_relay_restrictions = permit_mynetworks, reject",
      ...settings,
    ], port)
  );
}

export interface UpstreamPostfix extends PostfixInstance {
  /** smtpd that wants a PROXY v2 header first (smtpd_upstream_proxy_protocol = haproxy). */
  readonly proxyPort: number;
  /** smtpd that hangs up on a client idle for 2 s (smtpd_timeout), to fail a message midway. */
  readonly impatientPort: number;
  /** smtpd that takes 4 s over each RCPT (the sleep restriction): an upstream slow past a timeout. */
  readonly slowPort: number;
  /**
   * smtpd that allows XCLIENT from 127.0.0.1 only, as a production Postfix allows it from
   * mxscreen's address: after XCLIENT names a client from elsewhere, a second XCLIENT on that
   * connection is refused (550 5.7.0 insufficient authorization).
   */
  readonly xclientOncePort: number;
  /**
   * smtpd with error limits as hardening guides set them (smtpd_soft_error_limit 2, each reply
   * after the second error waits a second; smtpd_hard_error_limit 3, then 421).
   */
  readonly strictPort: number;
  /** smtpd that offers STARTTLS with `options.tls`'s certificate (0 without one), logging each TLS session. */
  readonly tlsPort: number;
  /** The same, speaking only TLS 1.1 and older, which Deno and Bun refuse: a handshake that fails (0 without `options.tls`). */
  readonly oldTlsPort: number;
}

/**
 * Postfix as the MTA behind mxscreen: local recipients someone@ and postmaster@example.org
 * (anyone else: 550 5.1.1), delivered to the discard transport; XCLIENT and XFORWARD allowed from loopback.
 */
export async function startUpstreamPostfix(options: { tls?: { cert: string; key: string } } = {}): Promise<UpstreamPostfix> {
  const [proxyPort, impatientPort, slowPort, xclientOncePort, strictPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const [tlsPort, oldTlsPort] = options.tls ? [await freePort(), await freePort()] : [0, 0];
  const tlsOptions = options.tls
    ? `-o smtpd_tls_security_level=may -o smtpd_tls_cert_file=${options.tls.cert} -o smtpd_tls_key_file=${options.tls.key} -o smtpd_tls_loglevel=1`
    : "";
  const tls = options.tls
    ? [
      `127.0.0.1:${tlsPort} inet n - n - - smtpd ${tlsOptions}`,
      `127.0.0.1:${oldTlsPort} inet n - n - - smtpd ${tlsOptions} -o smtpd_tls_protocols=!TLSv1.2,!TLSv1.3`,
      // smtpd gets its TLS randomness from tlsmgr: without it, "no entropy for TLS key generation: disabling TLS support".
      "tlsmgr unix - - n 1000? 1 tlsmgr",
    ]
    : [];
  const instance = await onFreePort((port) =>
    launch([
      `127.0.0.1:${port} inet n - n - - smtpd`,
      // No name lookup: the address in the PROXY header is not in /etc/hosts, and DNS must stay on loopback.
      `127.0.0.1:${proxyPort} inet n - n - - smtpd -o smtpd_upstream_proxy_protocol=haproxy -o smtpd_peername_lookup=no`,
      `127.0.0.1:${impatientPort} inet n - n - - smtpd -o smtpd_timeout=2s`,
      `127.0.0.1:${slowPort} inet n - n - - smtpd -o smtpd_client_restrictions=sleep,4`,
      `127.0.0.1:${xclientOncePort} inet n - n - - smtpd -o smtpd_authorized_xclient_hosts=127.0.0.1`,
      `127.0.0.1:${strictPort} inet n - n - - smtpd -o smtpd_soft_error_limit=2 -o smtpd_hard_error_limit=3`,
      ...tls,
    ], [
      "myhostname = upstream.test.example",
      "mydestination = example.org",
      "local_recipient_maps = inline:{ someone@example.org=ok, postmaster@example.org=ok }",
      "local_transport = discard:",
      "message_size_limit = 52428800",
      "smtpd_authorized_xclient_hosts = 127.0.0.0/8",
      "smtpd_authorized_xforward_hosts = 127.0.0.0/8",
      "smtpd_banner = $myhostname ESMTP upstream",
      // Each Received: header logged (with the session's helo=<…>), so a test reads what Postfix wrote.
      "header_checks = regexp:{{/^Received:/ WARN}}",
      // And each body line that begins with "BODYCHECK:", to see which lines of a body arrived.
      "body_checks = regexp:{{/^BODYCHECK:/ WARN}}",
    ], port)
  );
  return { ...instance, proxyPort, impatientPort, slowPort, xclientOncePort, strictPort, tlsPort, oldTlsPort };
}

async function launch(listeners: string[], settings: string[], port: number): Promise<PostfixInstance> {
  if (process.getuid?.() !== 0) throw new Error("the Postfix tests start a private Postfix instance, which needs root: run them as root");
  const dir = tempDir("mxscreen-postfix-");
  const maillog = layOutPostfix(dir, listeners, ["mynetworks = 127.0.0.0/8", ...settings]);

  const child: ChildProcess = spawn("postfix", ["-c", join(dir, "etc"), "start-fg"], { stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  const log = new LineLog("Postfix log", () => `\noutput:\n${output.join("")}`);
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => output.push(chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => output.push(chunk));
  let read = 0;
  const tail = setInterval(() => {
    const text = readFileSync(maillog, "utf8");
    const end = text.lastIndexOf("\n") + 1;
    if (end > read) log.write(text.slice(read, end));
    read = Math.max(read, end);
  }, 100);
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  onCleanup(() => instance.stop());
  const instance: PostfixInstance = {
    port,
    queueDir: join(dir, "queue"),
    log: log.lines,
    waitForLine: (pattern, timeoutMs = 15_000) => log.waitFor(pattern, timeoutMs),
    flush: () =>
      new Promise((resolve, reject) => {
        const flusher = spawn("postqueue", ["-c", join(dir, "etc"), "-f"], { stdio: "ignore" });
        flusher.on("error", reject);
        flusher.on("exit", (code) => code === 0 ? resolve() : reject(new Error(`postqueue -f exited ${code}`)));
      }),
    async stop() {
      clearInterval(tail);
      let pid = NaN;
      try {
        pid = Number(readFileSync(join(dir, "queue", "pid", "master.pid"), "utf8").trim());
      } catch {
        // Never started: nothing to stop but the launcher.
      }
      try {
        if (Number.isInteger(pid) && pid > 0) process.kill(pid, "SIGTERM");
      } catch {
        // The master had already gone (a fatal error at start): its launcher is what is left.
      }
      if (child.exitCode === null && child.signalCode === null) {
        const killer = setTimeout(() => process.kill(child.pid!, "SIGKILL"), 10_000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
  await Promise.race([
    instance.waitForLine(/daemon started/, 15_000),
    exited.then(() => {
      throw new Error(`Postfix exited at start (${child.exitCode ?? child.signalCode}):\n${log.lines.join("\n")}\n${output.join("")}`);
    }),
  ]);
  return instance;
}
