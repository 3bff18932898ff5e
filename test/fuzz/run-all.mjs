#!/usr/bin/env node
// `npm run fuzz`: the same fuzz run on Deno and then on Bun (one after the other, so each has
// the machine to itself), then one line with both runtimes' inputs per second.
// Arguments go to test/fuzz/main.ts: --count N (default 10,000,000), --seed S, --target NAME,
// --input I to replay one input; or MXSCREEN_FUZZ_COUNT / MXSCREEN_FUZZ_SEED.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const args = process.argv.slice(2);
// Both runtimes get the same seed, so they fuzz the same inputs.
if (!args.includes("--seed") && process.env.MXSCREEN_FUZZ_SEED === undefined) args.push("--seed", String(Date.now() % 0x1_0000_0000));

if (!existsSync(bin("deno")) || !existsSync(bin("bun"))) {
  console.error("fuzz: node_modules/.bin/deno or bun is missing: run `npm install` first");
  process.exit(2);
}

const runs = [
  { name: "deno", command: bin("deno"), args: ["run", "-A", "test/fuzz/main.ts", ...args] },
  { name: "bun", command: bin("bun"), args: ["test/fuzz/main.ts", ...args] },
];

/** Runs one runtime's fuzz, its output shown as it comes (a long run prints progress), and returns its summary line. */
function fuzzOn(run) {
  return new Promise((resolve) => {
    const child = spawn(run.command, run.args, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    let tail = "";
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString("utf8")).slice(-65536);
    });
    child.on("close", (status, signal) => {
      const line = /^##mxscreen-fuzz (.*)$/m.exec(tail);
      if (!line) console.log(`fuzz: the ${run.name} run ended without a summary (exit ${status ?? signal})`);
      resolve({ ok: status === 0, summary: line ? JSON.parse(line[1]) : undefined });
    });
  });
}

const summaries = [];
let failed = false;
for (const run of runs) {
  const { ok, summary } = await fuzzOn(run);
  if (!ok) failed = true;
  if (summary) summaries.push(summary);
}
const rates = summaries.map((s) =>
  `${s.runtime} ${s.inputsPerSecond} inputs/s (${s.callsPerSecond} calls/s, ${s.inputs} inputs, ${s.failed} failed, ${s.distinct} distinct)`
);
console.log(`fuzz: ${rates.join(" | ")}${failed ? " — FAILED" : " — ok"}`);
process.exit(failed ? 1 : 0);
