import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { loadConfig } from "../../src/config/config.ts";
import { parseDuration } from "../../src/config/duration.ts";
import { test } from "../harness.ts";
import { run } from "../helpers/cli.ts";
import { envPairs, parseContainerfile, parseEnvFile, parseToml, parseUnit, parseYaml, type Table } from "../helpers/recipe-formats.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { freePort, ROOT, startServer, tempDir } from "../helpers/server.ts";

const HOST = { hostname: "mx1.example.net", cpus: 2, openFiles: 65_536 };
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const RECIPES = ["Containerfile", "deploy/systemd/mxscreen.service", "deploy/systemd/mxscreen.env.example", "deploy/fly/fly.toml", "deploy/compose/compose.yaml"];
const DEFAULT_SHUTDOWN_MS = parseDuration("MXSCREEN_SHUTDOWN_TIMEOUT", "30s");

/** The settings a recipe gives the server: every value must load, and every name be known. */
function assertLoads(env: Record<string, string>, where: string) {
  const config = loadConfig(env, HOST);
  assert.deepEqual(config.unknownVariables, [], `${where} sets variables the configuration does not know`);
  return config;
}

const containerfile = () => parseContainerfile(read("Containerfile"));
const imageEnv = () => Object.assign({}, ...containerfile().filter((i) => i.keyword === "ENV").map((i) => envPairs(i.args))) as Record<string, string>;
const fly = () => parseToml(read("deploy/fly/fly.toml"), "fly.toml");
const compose = () => parseYaml(read("deploy/compose/compose.yaml"), "compose.yaml") as Table;

test("every MXSCREEN_ name in the recipes, comments included, is one the configuration reads", () => {
  const unknown = (names: string[]) => loadConfig(Object.fromEntries(names.map((name) => [name, ""])), HOST).unknownVariables;
  assert.deepEqual(unknown(["MXSCREEN_GREETWAIT"]), ["MXSCREEN_GREETWAIT"], "a misspelt name is reported");
  for (const recipe of RECIPES) {
    const names = [...new Set(read(recipe).match(/\bMXSCREEN_[A-Z0-9_]+/g) ?? [])];
    assert.ok(names.length > 0, `${recipe} names no MXSCREEN_ variable`);
    assert.deepEqual(unknown(names), [], `${recipe} names variables the configuration does not know`);
  }
});

test("systemd unit: the settings an MX needs, and the env file example loads, its commented examples too", () => {
  const unit = parseUnit(read("deploy/systemd/mxscreen.service"));
  const service = unit.Service;
  const one = (key: string) => {
    assert.equal(service[key]?.length, 1, `[Service] ${key}= once`);
    return service[key][0];
  };
  assert.ok(Number(one("LimitNOFILE")) >= 65_536);
  assert.equal(one("AmbientCapabilities"), "CAP_NET_BIND_SERVICE");
  assert.equal(one("CapabilityBoundingSet"), "CAP_NET_BIND_SERVICE");
  assert.equal(one("StateDirectory"), "mxscreen");
  assert.equal(one("WorkingDirectory"), "/var/lib/mxscreen");
  assert.equal(one("EnvironmentFile"), "/etc/mxscreen/mxscreen.env");
  assert.match(one("User"), /^[a-z][a-z0-9-]*$/);
  assert.notEqual(one("User"), "root");
  assert.deepEqual(one("RestartPreventExitStatus").split(/\s+/), ["2"]);
  assert.equal(one("ProtectSystem"), "strict");
  assert.equal(one("NoNewPrivileges"), "yes");
  assert.equal(one("ExecStart"), "/usr/local/bin/mxscreen serve");
  assert.ok(parseDuration("TimeoutStopSec", one("TimeoutStopSec")) > DEFAULT_SHUTDOWN_MS, "systemd waits for sessions in flight");
  assert.deepEqual(unit.Install.WantedBy, ["multi-user.target"]);

  const example = read("deploy/systemd/mxscreen.env.example");
  const config = assertLoads(parseEnvFile(example, true), "mxscreen.env.example");
  assert.equal(config.hostnameUnqualified, undefined);
  assert.ok(config.dbUrl.startsWith("file:/var/lib/mxscreen/") && config.spoolDir.startsWith("/var/lib/mxscreen/"), "the data in the StateDirectory");
  assert.deepEqual(config.listen.map((l) => l.port), [25, 25]);
});

test("systemd unit: systemd-analyze verify has nothing to say, and its security review rates it OK or better", () => {
  const dir = tempDir();
  // verify insists that ExecStart's program exists: the binary, as it would be installed, stands in at a path of this test.
  const program = join(dir, "mxscreen");
  writeFileSync(program, "#!/bin/sh\n");
  chmodSync(program, 0o755);
  const text = read("deploy/systemd/mxscreen.service");
  const unitFile = join(dir, "mxscreen.service");
  writeFileSync(unitFile, text.replace("ExecStart=/usr/local/bin/mxscreen ", `ExecStart=${program} `));
  assert.notEqual(readFileSync(unitFile, "utf8"), text);
  const verify = spawnSync("systemd-analyze", ["verify", unitFile], { encoding: "utf8" });
  assert.equal(verify.error, undefined, "systemd-analyze runs (Debian's systemd package; npm test installs it)");
  assert.equal(verify.status, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), "", "no warning about any line of the unit");
  const security = spawnSync("systemd-analyze", ["security", "--offline=true", unitFile], { encoding: "utf8" });
  assert.match(security.stdout + security.stderr, /Overall exposure level for mxscreen\.service: \d+\.\d (SAFE|OK)/);
});

test("Containerfile: multi-stage, the binary on Debian slim, non-root with port 25 by capability, a volume and a health check on /healthz", () => {
  const steps = containerfile();
  const froms = steps.filter((s) => s.keyword === "FROM");
  assert.ok(froms.length >= 2, "a build stage and a runtime stage");
  assert.match(froms[0].args, / AS build$/);
  assert.match(froms.at(-1)!.args, /^(docker\.io\/library\/)?debian:[a-z]+-slim$/);
  const final = steps.slice(steps.indexOf(froms.at(-1)!));
  const build = steps.slice(0, steps.indexOf(froms.at(-1)!));
  assert.ok(build.some((s) => s.keyword === "RUN" && s.args === "npm run build"));
  assert.ok(final.some((s) => s.keyword === "COPY" && s.args === "--from=build /src/dist/mxscreen /usr/local/bin/mxscreen"));
  assert.ok(final.some((s) => s.keyword === "RUN" && s.args.includes("setcap cap_net_bind_service=+ep /usr/local/bin/mxscreen")));
  const user = final.filter((s) => s.keyword === "USER").at(-1)?.args;
  assert.ok(user !== undefined && user !== "root" && user !== "0", `runs as ${user}`);
  assert.deepEqual(final.filter((s) => s.keyword === "VOLUME").map((s) => JSON.parse(s.args)), [["/var/lib/mxscreen"]]);
  assert.ok(final.some((s) => s.keyword === "EXPOSE" && s.args.split(/\s+/).includes("25")));
  assert.match(final.find((s) => s.keyword === "HEALTHCHECK")!.args, /CMD \[.*\/healthz/);
  assert.deepEqual(JSON.parse(final.find((s) => s.keyword === "ENTRYPOINT")!.args), ["/usr/local/bin/mxscreen"]);
  assert.deepEqual(JSON.parse(final.find((s) => s.keyword === "CMD")!.args), ["serve"]);
  const config = assertLoads(imageEnv(), "the image's ENV");
  assert.ok(config.dbUrl.startsWith("file:/var/lib/mxscreen/") && config.queueFile.startsWith("/var/lib/mxscreen/"), "the data in the volume");
});

/** The HEALTHCHECK's command (exec form), its program the binary at `binary`, as the image's user. */
function healthcheck(binary: string, env: Record<string, string>, dir: string) {
  const args = JSON.parse(/CMD (\[.*\])$/.exec(containerfile().find((s) => s.keyword === "HEALTHCHECK")!.args)![1]) as string[];
  const command = args.map((arg) => (arg === "/usr/local/bin/mxscreen" ? binary : arg));
  return run("setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", ...command], dir, env);
}

test("Containerfile's runtime steps on this Debian: the binary with its capability serves port 25 as nobody, the HEALTHCHECK passes, then fails once it stops", async () => {
  assert.equal(process.getuid?.(), 0, "needs root, to set a file capability and run as nobody (no container builder runs here)");
  const dir = tempDir();
  chmodSync(dir, 0o755);
  const binary = join(dir, "mxscreen");
  const build = await run("npm", ["run", "-s", "build", "--", "--outfile", binary], ROOT, { HOME: tempDir() });
  assert.equal(build.code, 0, build.stdout + build.stderr);
  const bare = join(dir, "mxscreen-without-capability");
  copyFileSync(binary, bare);
  chmodSync(bare, 0o755);
  const setcap = containerfile().find((s) => s.keyword === "RUN" && s.args.includes("setcap"))!.args.match(/setcap (\S+) \/usr\/local\/bin\/mxscreen/)!;
  const capability = spawnSync("setcap", [setcap[1], binary], { encoding: "utf8" });
  assert.equal(capability.status, 0, `setcap (libcap2-bin) failed: ${capability.stderr}`);
  const data = join(dir, "data");
  mkdirSync(data);
  chownSync(data, 65534, 65534);
  const adminPort = await freePort();
  // Port 25 on an address of this test's own, so no other MTA on the machine is in the way.
  const env = { ...imageEnv(), MXSCREEN_LISTEN: "127.0.25.1:25", MXSCREEN_ADMIN_LISTEN: `0.0.0.0:${adminPort}`, MXSCREEN_HOSTNAME: "mx.image.example", MXSCREEN_GREET_WAIT: "200ms", MXSCREEN_DB_URL: `file:${join(data, "mxscreen.db")}`, MXSCREEN_QUEUE_FILE: join(data, "queue.jsonl"), MXSCREEN_SPOOL_DIR: join(data, "spool") };
  const asNobody = (program: string) => ({ command: "setpriv", args: ["--reuid=nobody", "--regid=nogroup", "--clear-groups", program, "serve"] });

  // Bun's own words for EACCES here: "Failed to listen at 127.0.25.1".
  await assert.rejects(startServer(env, { dir: data, command: asNobody(bare) }), /Failed to listen at 127\.0\.25\.1|EACCES/, "without the capability nobody may not bind port 25");
  const server = await startServer(env, { dir: data, command: asNobody(binary) });
  const client = await RawClient.open(25, "127.0.25.2", "127.0.25.1");
  await client.until(/^220 /m);
  assert.match(client.text, /220 mx\.image\.example ESMTP\r\n$/);
  client.write("QUIT\r\n");
  await client.waitClosed();
  const healthy = await healthcheck(binary, env, data);
  assert.equal(healthy.code, 0, `HEALTHCHECK failed on a running server: ${healthy.stderr}`);
  assert.equal(await server.stop(), 0);
  const down = await healthcheck(binary, env, data);
  assert.notEqual(down.code, 0, "HEALTHCHECK passes with no server");
}, { timeoutMs: 60_000 });

test("fly.toml: TCP 25 through proxy_proto from trusted proxies, concurrency for held clients, kill_timeout past the shutdown, /healthz, metrics, a volume", () => {
  const toml = fly();
  const env = toml.env as Record<string, string>;
  const config = assertLoads(env, "fly.toml [env]");
  assert.equal(env.MXSCREEN_NODE, undefined, "each machine named after its region");
  assert.equal(assertLoads({ ...env, FLY_REGION: "ams" }, "fly.toml").node, "ams");
  assert.ok((toml.kill_timeout as number) * 1000 > config.shutdownTimeoutMs, "Fly waits for the sessions in flight");
  assert.ok(config.trustedProxies.length > 0, "MXSCREEN_TRUSTED_PROXIES names Fly's proxy");
  assert.ok(config.dbUrl.startsWith("file:") && config.dbSyncUrl?.startsWith("libsql://"), "an embedded replica of Turso");
  const [service, ...others] = toml.services as Table[];
  assert.equal(others.length, 0);
  assert.equal(service.protocol, "tcp");
  assert.equal(service.internal_port, config.listen[0].port);
  assert.deepEqual((service.ports as Table[]).map((p) => [p.port, p.handlers]), [[25, ["proxy_proto"]]]);
  const concurrency = service.concurrency as Table;
  assert.equal(concurrency.type, "connections");
  assert.ok((concurrency.soft_limit as number) > 20 && (concurrency.hard_limit as number) > 25, "above Fly's default of 20/25");
  assert.ok((concurrency.hard_limit as number) <= config.connectionLimits.total, "not above what one process may hold");
  const checks = Object.values(toml.checks as Record<string, Table>);
  assert.ok(checks.length > 0 && checks.every((c) => c.type === "http" && c.path === "/healthz" && c.port === config.adminListen?.port));
  assert.equal(config.adminListen?.host, "0.0.0.0", "reachable by Fly's checks");
  assert.deepEqual(toml.metrics, { port: config.adminListen?.port, path: "/metrics" });
  const [mount] = toml.mounts as Table[];
  assert.equal(dirname(config.dbUrl.slice("file:".length)), mount.destination);
  assert.ok(config.queueFile.startsWith(`${mount.destination}/`) && config.spoolDir.startsWith(`${mount.destination}/`));
});

test("compose.yaml: a Bun node and a Deno node on one sqld, each configuration loading", () => {
  const services = compose().services as Record<string, Table>;
  assert.deepEqual(Object.keys(services).sort(), ["mx-bun", "mx-deno", "sqld"]);
  const sqldPort = (services.sqld.environment as Table).SQLD_HTTP_LISTEN_ADDR!.toString().split(":")[1];
  const stages = containerfile().filter((s) => s.keyword === "FROM").map((s) => / AS (\S+)$/.exec(s.args)?.[1]);
  const runtimes: string[] = [];
  for (const name of ["mx-bun", "mx-deno"]) {
    const node = services[name];
    const build = node.build as Table;
    assert.equal(build.dockerfile, "Containerfile");
    assert.ok(build.target === undefined || stages.includes(build.target as string), `${name}: target ${build.target} is a stage of the Containerfile`);
    // The Bun node is the image itself, with its ENV; the Deno node the build stage, with none.
    const env = { ...(build.target === undefined ? imageEnv() : {}), ...(node.environment as Record<string, string>) };
    const config = assertLoads(env, `compose.yaml ${name}`);
    assert.equal(config.dbUrl, `http://sqld:${sqldPort}`);
    assert.equal(config.node, name);
    assert.deepEqual(node.depends_on, ["sqld"]);
    const command = node.command as string[] | undefined;
    runtimes.push(command === undefined ? "bun" : command[command.indexOf("--runtime") + 1]);
    if (command) assert.deepEqual(command.slice(0, 2), ["node", "src/cli/launch.mjs"]);
  }
  assert.deepEqual(runtimes, ["bun", "deno"]);
});
