// The layout of a private instance of Debian's Postfix, shared by the tests (test/helpers/postfix.ts)
// and the bench (bench/servers.mjs): plain JavaScript so that Node, Deno and Bun all import it.
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The services an instance may need (postscreen's helpers included), none of them chrooted: its queue has no /etc. */
const SERVICES = [
  "pickup unix n - n 60 1 pickup",
  "cleanup unix n - n - 0 cleanup",
  "qmgr unix n - n 300 1 qmgr",
  "rewrite unix - - n - - trivial-rewrite",
  "bounce unix - - n - 0 bounce",
  "defer unix - - n - 0 bounce",
  "trace unix - - n - 0 bounce",
  "verify unix - - n - 1 verify",
  "flush unix n - n 1000? 0 flush",
  "proxymap unix - - n - - proxymap",
  "smtp unix - - n - - smtp",
  "relay unix - - n - - smtp",
  "showq unix n - n - - showq",
  "error unix - - n - - error",
  "retry unix - - n - - error",
  "discard unix - - n - - discard",
  "local unix - n n - - local",
  "anvil unix - - n - 1 anvil",
  "scache unix - - n - 1 scache",
  "postlog unix-dgram n - n - 1 postlogd",
  "dnsblog unix - - n - 0 dnsblog",
  "tlsproxy unix - - n - 0 tlsproxy",
];

/**
 * Lays out a Postfix instance in `dir` (started later with `postfix -c DIR/etc start-fg`, as
 * root): etc/, queue/ and data/, a maillog file, main.cf (loopback only, the smtp client
 * without DNS, then `settings`) and master.cf (`listeners`, then the services).
 * @param {string} dir
 * @param {readonly string[]} listeners master.cf lines of the smtpd or postscreen listeners
 * @param {readonly string[]} settings main.cf lines
 * @returns {string} the maillog file's path
 */
export function layOutPostfix(dir, listeners, settings) {
  // Postfix's daemons run as the postfix user: they must be able to reach their directories.
  chmodSync(dir, 0o755);
  for (const sub of ["etc", "queue", "data"]) mkdirSync(join(dir, sub));
  const postfixUid = Number(spawnSync("id", ["-u", "postfix"], { encoding: "utf8" }).stdout.trim());
  chownSync(join(dir, "data"), postfixUid, -1);
  // A file, not /dev/stdout: Bun hands a child sockets for its stdio, which /dev/stdout cannot open.
  const maillog = join(dir, "maillog");
  writeFileSync(maillog, "");
  chownSync(maillog, postfixUid, -1);
  writeFileSync(
    join(dir, "etc", "main.cf"),
    [
      "compatibility_level = 3.6",
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      "inet_interfaces = 127.0.0.1",
      "inet_protocols = ipv4",
      // No DNS for the smtp client: test and bench traffic must not reach the machine's resolver.
      "smtp_dns_support_level = disabled",
      `maillog_file = ${maillog}`,
      `maillog_file_prefixes = ${dir}`,
      "alias_maps =",
      "alias_database =",
      ...settings,
    ].join("\n") + "\n",
  );
  writeFileSync(join(dir, "etc", "master.cf"), [...listeners, ...SERVICES].join("\n") + "\n");
  return maillog;
}
