import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { validate } from "dockerfile-utils";
import { loadConfig } from "../../src/config/config.ts";
import { parseDuration } from "../../src/config/duration.ts";
import { test } from "../harness.ts";
import { envPairs, parseContainerfile, parseEnvFile, parseToml, parseUnit, parseYaml, type Table } from "../helpers/recipe-formats.ts";
import { ROOT, tempDir } from "../helpers/server.ts";

const HOST = { hostname: "mx1.example.net", cpus: 2, openFiles: 65_536 };
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const RECIPES = [
  "Containerfile",
  "deploy/systemd/mxscreen.service",
  "deploy/systemd/mxscreen.env.example",
  "deploy/fly/fly.toml",
  "deploy/compose/compose.yaml",
];
const DEFAULT_SHUTDOWN_MS = parseDuration("MXSCREEN_SHUTDOWN_TIMEOUT", "30s");

/** The settings a recipe gives the server: every value must load, and every name be known. */
function assertLoads(env: Record<string, string>, where: string) {
  const config = loadConfig(env, HOST);
  assert.deepEqual(config.unknownVariables, [], `${where} sets variables the configuration does not know`);
  return config;
}

const containerfile = () => parseContainerfile(read("Containerfile"));
const imageEnv = () =>
  Object.assign({}, ...containerfile().filter((i) => i.keyword === "ENV").map((i) => envPairs(i.args))) as Record<string, string>;
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
  assert.ok(
    config.dbUrl.startsWith("file:/var/lib/mxscreen/") && config.spoolDir.startsWith("/var/lib/mxscreen/"),
    "the data in the StateDirectory",
  );
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
  assert.ok(
    config.dbUrl.startsWith("file:/var/lib/mxscreen/") && config.queueFile.startsWith("/var/lib/mxscreen/"),
    "the data in the volume",
  );
});

test("Containerfile: a Dockerfile parser and linter (dockerfile-utils, the VS Code Docker extension's) finds nothing, and does find a misspelt instruction or flag", () => {
  const text = read("Containerfile");
  const problems = (t: string) => validate(t).map((d) => `${d.range.start.line + 1}: ${d.message}`);
  assert.deepEqual(problems(text), []);
  const broken = text.replace("USER mxscreen", "USR mxscreen").replace("HEALTHCHECK --interval=", "HEALTHCHECK --intervall=");
  assert.equal(problems(broken).length, 2, problems(broken).join("\n"));
});

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
    assert.ok(
      build.target === undefined || stages.includes(build.target as string),
      `${name}: target ${build.target} is a stage of the Containerfile`,
    );
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

/**
 * The keys flyctl knows in each section fly.toml uses, as its strict validation reads them from
 * the toml tags of its types (flyctl internal/appconfig/strict_validate.go at ad0172f, 2026-08-21):
 * Config, Mount and Metrics in config.go, Service in service.go, ToplevelCheck in toplevelcheck.go,
 * and from fly-go v0.9.6 machine_types.go MachinePort, ProxyProtoOptions, MachineServiceConcurrency
 * and MachineMetrics. Fly publishes no schema package; this is the list flyctl itself checks against.
 */
const FLY_KEYS: Record<string, readonly string[]> = {
  "": [
    "app",
    "primary_region",
    "kill_signal",
    "kill_timeout",
    "swap_size_mb",
    "console_command",
    "experimental",
    "build",
    "deploy",
    "env",
    "processes",
    "mounts",
    "http_service",
    "services",
    "checks",
    "files",
    "host_dedication_id",
    "machine_config",
    "container",
    "machine_checks",
    "restart",
    "vm",
    "statics",
    "metrics",
  ],
  mounts: [
    "source",
    "destination",
    "initial_size",
    "snapshot_retention",
    "scheduled_snapshots",
    "auto_extend_size_threshold",
    "auto_extend_size_increment",
    "auto_extend_size_limit",
    "processes",
  ],
  services: [
    "protocol",
    "internal_port",
    "auto_stop_machines",
    "auto_start_machines",
    "min_machines_running",
    "ports",
    "concurrency",
    "tcp_checks",
    "http_checks",
    "machine_checks",
    "processes",
  ],
  "services.ports": ["port", "start_port", "end_port", "handlers", "force_https", "tls_options", "http_options", "proxy_proto_options"],
  "services.ports.proxy_proto_options": ["version"],
  "services.concurrency": ["type", "hard_limit", "soft_limit"],
  "checks.*": [
    "port",
    "type",
    "interval",
    "timeout",
    "grace_period",
    "method",
    "path",
    "protocol",
    "tls_skip_verify",
    "tls_server_name",
    "headers",
    "processes",
  ],
  metrics: ["port", "path", "https", "processes"],
};
/** Sections whose keys are the operator's own names (env variables, check names). */
const FLY_FREE = new Set(["env", "checks"]);

/** Keys of `table` (at `path`) that flyctl would report as unrecognised, as `path.key`. */
function unknownFlyKeys(table: Table, path = ""): string[] {
  const known = FLY_KEYS[path];
  const found: string[] = [];
  for (const [key, value] of Object.entries(table)) {
    const here = path === "" ? key : `${path}.${key}`;
    if (known !== undefined && !known.includes(key)) {
      found.push(here);
      continue;
    }
    const next = FLY_FREE.has(here) ? undefined : here;
    const tables = Array.isArray(value) ? value : [value];
    for (const item of tables) {
      if (item === null || typeof item !== "object" || Array.isArray(item)) continue;
      if (next === undefined) {
        if (here === "checks") {
          for (const check of Object.values(item as Table)) found.push(...unknownFlyKeys(check as Table, "checks.*"));
        }
        continue;
      }
      found.push(...unknownFlyKeys(item as Table, next));
    }
  }
  return found;
}

test("fly.toml: every key is one flyctl knows, in the section it belongs to, with values of the kinds it reads", () => {
  const toml = fly();
  assert.deepEqual(unknownFlyKeys({ ...toml, kill_timout: 45 }), ["kill_timout"], "a misspelt key is found");
  assert.deepEqual(unknownFlyKeys({ services: [{ ports: [{ proxy_proto: true }] }] }), ["services.ports.proxy_proto"]);
  assert.deepEqual(unknownFlyKeys(toml), []);
  const [service] = toml.services as Table[];
  // The handlers Fly's reference lists (fly.io/docs/reference/services, Connection Handlers).
  for (const port of service.ports as Table[]) {
    for (const handler of port.handlers as string[]) {
      assert.ok(["tls", "pg_tls", "http", "edge_http", "proxy_proto"].includes(handler), handler);
    }
  }
  // fly-go's MachineAutostop reads true, false, "off", "stop" or "suspend"; its Duration an integer of seconds or "45s".
  assert.ok([true, false, "off", "stop", "suspend"].includes(service.auto_stop_machines as string | boolean));
  assert.ok(typeof toml.kill_timeout === "number" || /^\d+(ms|s|m|h)$/.test(String(toml.kill_timeout)));
  for (const check of Object.values(toml.checks as Record<string, Table>)) {
    for (const key of ["interval", "timeout", "grace_period"]) assert.match(String(check[key]), /^\d+(ms|s|m|h)$/, `checks ${key}`);
  }
});

test("compose.yaml: valid for docker-compose (Debian's, which checks it against the Compose Specification schema without an engine), and a misspelt key is not", () => {
  const check = (dir: string) => spawnSync("docker-compose", ["config", "--quiet"], { cwd: dir, encoding: "utf8" });
  const valid = check(join(ROOT, "deploy/compose"));
  assert.equal(valid.error, undefined, "docker-compose runs (Debian's docker-compose package; npm test installs it)");
  assert.equal(valid.status, 0, valid.stderr);
  const dir = tempDir();
  writeFileSync(join(dir, "compose.yaml"), read("deploy/compose/compose.yaml").replace("    depends_on:", "    depends_onn:"));
  const broken = check(dir);
  assert.notEqual(broken.status, 0);
  assert.match(broken.stderr, /depends_onn/);
});
