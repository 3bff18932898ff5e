import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { loadConfig } from "../../src/config/config.ts";
import { ConfigError } from "../../src/config/config-error.ts";
import { test } from "../harness.ts";
import { ROOT, RUNTIME, runtimeCommand, tempDir } from "../helpers/server.ts";

const HOST = { hostname: "mx1.example.net", cpus: 2, openFiles: 20_000 };

test("defaults follow the README's configuration table", () => {
  const c = loadConfig({}, HOST);
  assert.deepEqual(c.listen, [{ host: "0.0.0.0", port: 2525 }]);
  assert.equal(c.hostname, "mx1.example.net");
  assert.equal(c.node, "mx1.example.net");
  assert.equal(c.dbUrl, "file:data/mxscreen.db");
  assert.equal(c.spoolDir, "data/spool");
  // SPEC §2 said the CPU count; issue 17 made it `auto`: inline on this two-core host.
  assert.equal(c.workers, 0);
  assert.equal(c.greetWaitMs, 6000);
  assert.equal(c.passTtlMs, 86_400_000);
  assert.equal(c.banTtlMs, 86_400_000);
  assert.equal(c.banAction, "reject");
  assert.equal(c.mode, "enforce");
  assert.equal(c.log, "text");
  assert.equal(c.pipelining, false);
  assert.equal(c.replicaSyncIntervalMs, 5000);
});

test("overload defaults follow the open-files limit: 421 before the runtime runs out of files, stress at three quarters", () => {
  const c = loadConfig({}, HOST);
  assert.equal(c.connectionLimits.total, 19_000);
  assert.equal(c.stressConnections, 14_250);
  assert.equal(c.greetWaitStressMs, 2000);
  assert.equal(c.processes, 1);
  assert.equal(loadConfig({}, { ...HOST, openFiles: 1024 }).connectionLimits.total, 960);
  assert.throws(() => loadConfig({ MXSCREEN_MAX_CONNECTIONS: "25000" }, HOST), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /MXSCREEN_MAX_CONNECTIONS.*25000.*at most 20000.*open-files limit.*MXSCREEN_PROCESSES/);
    return true;
  });
  assert.throws(() => loadConfig({ MXSCREEN_GREET_WAIT: "3s", MXSCREEN_GREET_WAIT_STRESS: "4s" }, HOST), /MXSCREEN_GREET_WAIT_STRESS/);
  assert.equal(
    loadConfig({ MXSCREEN_GREET_WAIT: "1s" }, HOST).greetWaitStressMs,
    1000,
    "a greet wait shorter than 2s is its own stress wait",
  );
  assert.throws(() => loadConfig({ MXSCREEN_PROCESSES: "0" }, HOST), /MXSCREEN_PROCESSES/);
});

test("session limits: a shorter deadline per line under stress, never longer than the command timeout", () => {
  const c = loadConfig({}, HOST);
  assert.equal(c.commandTimeoutMs, 300_000);
  assert.equal(c.stressTimeoutMs, 10_000);
  assert.equal(
    loadConfig({ MXSCREEN_COMMAND_TIMEOUT: "2s" }, HOST).stressTimeoutMs,
    2000,
    "a command timeout shorter than 10s is its own stress timeout",
  );
  assert.equal(loadConfig({ MXSCREEN_COMMAND_TIMEOUT_STRESS: "30s" }, HOST).stressTimeoutMs, 30_000);
  assert.equal(c.bareCr, "reject");
  assert.equal(loadConfig({ MXSCREEN_BARE_CR: "Normalize" }, HOST).bareCr, "normalize");
  assert.equal(c.checks.maxTransactions, 1000, "an Exim queue run's 1000 messages per connection");
  assert.equal(c.checkActions.transactions, "enforce");
  assert.throws(
    () => loadConfig({ MXSCREEN_COMMAND_TIMEOUT: "5s", MXSCREEN_COMMAND_TIMEOUT_STRESS: "6s" }, HOST),
    /MXSCREEN_COMMAND_TIMEOUT_STRESS="6s".*no longer than MXSCREEN_COMMAND_TIMEOUT \(5000 ms\)/,
  );
});

test("values parse: durations, listen lists with IPv6, domains, sizes", () => {
  const c = loadConfig({
    MXSCREEN_LISTEN: "0.0.0.0:25, [::]:25",
    MXSCREEN_GREET_WAIT: "300ms",
    MXSCREEN_PASS_TTL: "10m",
    MXSCREEN_ACCEPT_DOMAINS: "Example.org,example.net",
    MXSCREEN_MAX_MESSAGE_SIZE: "10M",
    MXSCREEN_WORKERS: "0",
    MXSCREEN_ALLOW: "192.0.2.0/24,2001:db8::/32",
  }, HOST);
  assert.deepEqual(c.listen, [{ host: "0.0.0.0", port: 25 }, { host: "::", port: 25 }]);
  assert.equal(c.greetWaitMs, 300);
  assert.equal(c.passTtlMs, 600_000);
  assert.deepEqual(c.acceptDomains, ["example.org", "example.net"]);
  assert.equal(c.maxMessageSize, 10 * 1024 * 1024);
  assert.equal(c.workers, 0);
  assert.equal(c.allow.length, 2);
});

test("every check has an action variable with its default, and the check knobs their defaults", () => {
  const c = loadConfig({ MXSCREEN_ACTION_PIPELINING: "ban", MXSCREEN_TRAP: "true", MXSCREEN_TRAP_RCPTS: "Trap@Example.org" }, HOST);
  assert.equal(c.checkActions["pipelining"], "ban");
  assert.equal(c.checkActions["bare-newline"], "enforce");
  assert.equal(c.checkActions["dictionary"], "ban");
  assert.equal(c.checks.maxUnknownCommands, 3);
  assert.equal(c.checks.maxBadRecipients, 5);
  assert.equal(c.checks.trap, true);
  assert.deepEqual(c.checks.trapRecipients, ["trap@example.org"]);
  assert.equal(c.checks.ehloRefusal, false);
  assert.deepEqual(c.unknownVariables, []);
});

test("MXSCREEN_DNSBL parses postscreen's weighted list with filters", () => {
  const c = loadConfig({
    MXSCREEN_DNSBL: "Zen.Example*3, list.dnswl.example=127.0.[0..255].[1..3;5]*-4,plain.example",
    MXSCREEN_DNSWL_THRESHOLD: "-2",
  }, HOST);
  assert.deepEqual(c.checks.dnsbl, [
    { zone: "zen.example", filter: undefined, weight: 3 },
    { zone: "list.dnswl.example", filter: [[[127, 127]], [[0, 0]], [[0, 255]], [[1, 3], [5, 5]]], weight: -4 },
    { zone: "plain.example", filter: undefined, weight: 1 },
  ]);
  assert.equal(c.checks.dnsblThreshold, 1);
  assert.equal(c.checks.dnswlThreshold, -2);
  assert.equal(c.dnsTimeoutMs, 5000);
});

test("greylisting timings are read when MXSCREEN_GREYLIST=true or the harvest check may greylist, and checked", () => {
  const timings = { delayMs: 300_000, windowMs: 14_400_000, passTtlMs: 35 * 86_400_000, maxTriplets: 500_000 };
  assert.deepEqual(loadConfig({ MXSCREEN_GREYLIST: "true" }, HOST).greylist, timings);
  assert.equal(loadConfig({ MXSCREEN_GREYLIST: "true", MXSCREEN_GREYLIST_MAX_TRIPLETS: "2000" }, HOST).greylist?.maxTriplets, 2000);
  assert.deepEqual(loadConfig({}, HOST).greylist, timings, "a domain under harvest greylists new clients by default");
  assert.equal(loadConfig({ MXSCREEN_ACTION_HARVEST: "ignore" }, HOST).greylist, undefined);
  assert.equal(loadConfig({ MXSCREEN_MODE: "observe" }, HOST).greylist, undefined);
  for (
    const [variable, value, expected] of [
      ["MXSCREEN_GREYLIST_MAX_TRIPLETS", "999", /1000/],
      ["MXSCREEN_GREYLIST_DELAY", "5", /duration/],
      ["MXSCREEN_GREYLIST_PASS_TTL", "forever", /duration/],
      ["MXSCREEN_GREYLIST_WINDOW", "1m", /longer than MXSCREEN_GREYLIST_DELAY/],
    ] as const
  ) {
    assert.throws(() => loadConfig({ MXSCREEN_GREYLIST: "true", [variable]: value }, HOST), (error: unknown) => {
      assert.ok(error instanceof ConfigError && error.variable === variable, String(error));
      assert.match(error.message, expected);
      return true;
    });
  }
});

test("MXSCREEN_ variables that no setting reads are reported as unknown", () => {
  const c = loadConfig({ MXSCREEN_GREETWAIT: "1s", MXSCREEN_GREET_WAIT: "1s", MXSCREEN_RUNTIME: "bun", OTHER: "x" }, HOST);
  assert.deepEqual(c.unknownVariables, ["MXSCREEN_GREETWAIT"]);
});

const BAD: [string, string, RegExp][] = [
  ["MXSCREEN_LISTEN", "2525", /host:port/],
  ["MXSCREEN_LISTEN", "[1.2.3.4]:25", /host:port/],
  ["MXSCREEN_LISTEN", "0.0.0.0:70000", /host:port/],
  ["MXSCREEN_GREET_WAIT", "6", /duration/],
  ["MXSCREEN_GREET_WAIT", "soon", /duration/],
  ["MXSCREEN_PASS_TTL", "0s", /above 0/],
  ["MXSCREEN_BAN_TTL", "1y", /duration/],
  ["MXSCREEN_BAN_ACTION", "tarpit", /reject, drop/],
  ["MXSCREEN_ACTION_PREGREET", "maybe", /ignore, enforce, ban/],
  ["MXSCREEN_MODE", "monitor", /enforce, observe/],
  ["MXSCREEN_LOG", "xml", /text, json/],
  ["MXSCREEN_WORKERS", "-1", /whole number/],
  ["MXSCREEN_WORKERS", "many", /whole number/],
  ["MXSCREEN_ACCEPT_DOMAINS", "exa mple.org", /domain names/],
  ["MXSCREEN_ALLOW", "10.0.0.0/99", /CIDR/],
  ["MXSCREEN_ALLOW", "192.0.2.0/24,.exa mple.org", /"\.exa mple\.org" is not a domain suffix/],
  ["MXSCREEN_DB_URL", "postgres://x", /libSQL URL/],
  ["MXSCREEN_DNS", "127.0.0.1", /ip:port/],
  ["MXSCREEN_HOSTNAME", "bad host", /host name/],
  ["MXSCREEN_PIPELINING", "sometimes", /true or false/],
  ["MXSCREEN_MAX_MESSAGE_SIZE", "big", /size in bytes/],
  ["MXSCREEN_UPSTREAM", "127.0.0.1:25", /smtp:\/\/host:port of the MTA behind mxscreen/],
  ["MXSCREEN_UPSTREAM", "smtp://127.0.0.1:99999", /smtp:\/\/host:port/],
  ["MXSCREEN_UPSTREAM_IDENTITY", "haproxy", /xclient, xforward, proxy, none, auto/],
  ["MXSCREEN_UPSTREAM_TIMEOUT", "soon", /duration/],
  ["MXSCREEN_UPSTREAM_DATA_TIMEOUT", "later", /duration/],
  ["MXSCREEN_UPSTREAM_TLS", "required", /one of may, verify, off/],
  ["MXSCREEN_UPSTREAM_TLS_CA", "/nonexistent/ca.pem", /a readable PEM file of CA certificates \(.*ENOENT/],
  ["MXSCREEN_UPSTREAM_TLS_CA", "/dev/null", /a PEM file of CA certificates .*it holds none/],
  ["MXSCREEN_DNSBL_REPLY_MAP", "/nonexistent/dnsbl_reply", /a readable file of "zone name" lines/],
  ["MXSCREEN_TLS_CERT", "/etc/cert.pem", /MXSCREEN_TLS_CERT and MXSCREEN_TLS_KEY set together/],
  ["MXSCREEN_TLS_KEY", "/etc/key.pem", /MXSCREEN_TLS_CERT and MXSCREEN_TLS_KEY set together/],
  ["MXSCREEN_TRUSTED_PROXIES", "lb.example", /IP addresses or CIDR prefixes/],
  ["MXSCREEN_DNSBL", "zen.example*x", /zone\[=filter\]\[\*weight\] items.*"zen\.example\*x" is not one/],
  ["MXSCREEN_DNSBL", "zen.example=127.0.0*3", /the filter in "zen\.example=127\.0\.0\*3" is not four octets/],
  ["MXSCREEN_DNSBL", "wl.example=127.0.[0..256].1", /is not four octets/],
  ["MXSCREEN_DNSBL_THRESHOLD", "one", /whole number, e\.g\. 1 or -1/],
  ["MXSCREEN_DNSWL_THRESHOLD", "-1.5", /whole number/],
  ["MXSCREEN_DNS_TIMEOUT", "0s", /above 0/],
  ["MXSCREEN_GREYLIST", "sometimes", /true or false/],
  ["MXSCREEN_OWN_HOSTS", "mx1.example.org,not a host", /domain names separated by commas \("not a host"/],
  ["MXSCREEN_MAX_BAD_RCPT_PREFIX", "0", /whole number from 1 to 1000000/],
  ["MXSCREEN_BAD_RCPT_WINDOW", "an hour", /duration/],
  ["MXSCREEN_MAX_CONN_PER_CLIENT", "0", /whole number from 1 to 1000000/],
  ["MXSCREEN_MAX_CONN_PER_PREFIX", "lots", /whole number from 1 to 1000000/],
  ["MXSCREEN_MAX_CONNECTIONS", "20001", /at most 20000, this process.s open-files limit/],
  ["MXSCREEN_ACTION_CONNECTION_LIMIT", "drop", /ignore, enforce, ban/],
  ["MXSCREEN_TRAP", "sometimes", /true or false/],
  ["MXSCREEN_TRAP_RCPTS", "trap@example.org,not an address", /mail addresses separated by commas \("not an address"/],
  ["MXSCREEN_EHLO_REFUSAL", "maybe", /true or false/],
  ["MXSCREEN_MAX_UNKNOWN", "many", /whole number from 0 to 1000/],
  ["MXSCREEN_MAX_RSET", "0", /whole number from 1 to 1000/],
  ["MXSCREEN_MAX_TRANSACTIONS", "-3", /whole number from 1 to 100000/],
  ["MXSCREEN_MAX_BAD_RCPT", "five", /whole number from 0 to 100000/],
  ["MXSCREEN_MAX_COMMANDS", "5", /whole number from 10 to 1000000/],
  ["MXSCREEN_ACTION_BARE_NEWLINE", "drop", /ignore, enforce, ban/],
  ["MXSCREEN_ACTION_HELO_SYNTAX", "reject", /ignore, enforce, ban/],
  ["MXSCREEN_MAX_LINE_LENGTH", "100", /from 512 to 65536/],
  ["MXSCREEN_MAX_RECIPIENTS", "0", /from 1 to 100000/],
  ["MXSCREEN_COMMAND_TIMEOUT", "5 minutes", /duration/],
  ["MXSCREEN_DATA_TIMEOUT", "-1s", /duration/],
  ["MXSCREEN_COMMAND_TIMEOUT", "0s", /above 0/],
  ["MXSCREEN_BARE_CR", "strip", /one of reject, normalize/],
  ["MXSCREEN_COMMAND_TIMEOUT_STRESS", "0s", /above 0/],
  ["MXSCREEN_SHUTDOWN_TIMEOUT", "soon", /duration/],
  ["MXSCREEN_IPV6_PREFIX", "8", /from 16 to 128/],
  ["MXSCREEN_REPLICA_SYNC_INTERVAL", "250ms", /at least 1s/],
];

test("an embedded replica needs a file: URL", () => {
  assert.throws(
    () => loadConfig({ MXSCREEN_DB_URL: "http://127.0.0.1:8080", MXSCREEN_DB_SYNC_URL: "http://127.0.0.1:8080" }, HOST),
    /MXSCREEN_DB_URL="http:\/\/127\.0\.0\.1:8080" is not valid: expected a file: URL when MXSCREEN_DB_SYNC_URL/,
  );
  assert.equal(loadConfig({ MXSCREEN_TRAP: "false" }, HOST).listen.length, 1, "MXSCREEN_TRAP=false is accepted");
});

for (const [variable, value, expected] of BAD) {
  test(`a bad ${variable} (${value}) names the variable, the value and what is expected`, () => {
    assert.throws(() => loadConfig({ [variable]: value }, HOST), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.variable, variable);
      assert.ok(error.message.startsWith(`${variable}=${JSON.stringify(value)} is not valid: expected `), error.message);
      assert.match(error.message, expected);
      return true;
    });
  });
}

test("start-up stops with one line on stderr and exit code 2 for a bad value", async () => {
  const dir = tempDir();
  const { command, args } = runtimeCommand(RUNTIME, join(ROOT, "src/main.ts"));
  const child = spawn(command, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", HOME: dir, MXSCREEN_GREET_WAIT: "six seconds" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let stdout = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => stderr += d);
  child.stdout!.setEncoding("utf8").on("data", (d: string) => stdout += d);
  const code = await new Promise((resolve) => child.on("exit", resolve));
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.equal(stderr.trim().split("\n").length, 1, stderr);
  assert.match(stderr, /^mxscreen: MXSCREEN_GREET_WAIT="six seconds" is not valid: expected a duration such as 300ms, 6s/);
}, { timeoutMs: 20_000 });

test("absurd sizes and durations are refused with the value and the limit, never taken as Infinity or an invalid date", () => {
  const refused = (env: Record<string, string>, message: RegExp) =>
    assert.throws(() => loadConfig(env, HOST), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, message);
      return true;
    });
  refused(
    { MXSCREEN_MAX_MESSAGE_SIZE: "99999999999999999999G" },
    /^MXSCREEN_MAX_MESSAGE_SIZE="99999999999999999999G" is not valid: expected a size of at most 9007199254740991 bytes$/,
  );
  refused({ MXSCREEN_MAX_MESSAGE_SIZE: "9007199254740992" }, /at most 9007199254740991 bytes/);
  refused(
    { MXSCREEN_BAN_TTL: "100000000d" },
    /^MXSCREEN_BAN_TTL="100000000d" is not valid: expected a duration of at most 36500d \(100 years\)$/,
  );
  refused({ MXSCREEN_PASS_TTL: "36501d" }, /MXSCREEN_PASS_TTL="36501d" .*at most 36500d/);
  assert.equal(loadConfig({ MXSCREEN_BAN_TTL: "36500d" }, HOST).banTtlMs, 36_500 * 86_400_000);
  assert.equal(loadConfig({ MXSCREEN_MAX_MESSAGE_SIZE: "8388607G" }, HOST).maxMessageSize, 8_388_607 * 1024 ** 3);
  assert.ok(!Number.isNaN(new Date(Date.now() + loadConfig({ MXSCREEN_BAN_TTL: "36500d" }, HOST).banTtlMs).getTime()));
});

test("on Fly.io the node is named after FLY_REGION unless MXSCREEN_NODE is set", () => {
  assert.equal(loadConfig({ FLY_REGION: "ams" }, HOST).node, "ams");
  assert.equal(loadConfig({ FLY_REGION: "ams", MXSCREEN_NODE: "edge-1" }, HOST).node, "edge-1");
  assert.equal(loadConfig({ FLY_REGION: " " }, HOST).node, "mx1.example.net");
});

test("a banner name that is not fully qualified is flagged with where it came from", () => {
  assert.equal(loadConfig({}, HOST).hostnameUnqualified, undefined);
  assert.equal(loadConfig({}, { ...HOST, hostname: "vm" }).hostnameUnqualified, "the system hostname");
  assert.equal(loadConfig({ MXSCREEN_HOSTNAME: "mx" }, HOST).hostnameUnqualified, "MXSCREEN_HOSTNAME");
  assert.equal(loadConfig({ MXSCREEN_HOSTNAME: "mx.10" }, HOST).hostnameUnqualified, "MXSCREEN_HOSTNAME");
  assert.equal(loadConfig({ MXSCREEN_HOSTNAME: "mx1.example.net" }, { ...HOST, hostname: "vm" }).hostnameUnqualified, undefined);
});
