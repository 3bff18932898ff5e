/**
 * One fuzz run on the runtime that runs this file: `--target session --count N --seed S`
 * (or MXSCREEN_FUZZ_COUNT / MXSCREEN_FUZZ_SEED), `--input I` to replay one input of a seed.
 * Prints progress, every distinct failure (shrunk, replayable) and a machine-readable last line.
 */
import process from "node:process";
import { runtimeName } from "../../src/net/runtime/which-runtime.ts";
import { attempt, fuzz, generate, guarded, report, type Target } from "./engine.ts";
import { upstreamTarget } from "./upstream-target.ts";
import { sessionTarget } from "./session-target.ts";

/** Adding a target (the upstream machine, say): one file exporting a `Target` (engine.ts) and one line here. */
const TARGETS: Readonly<Record<string, () => Target<never>>> = {
  session: sessionTarget as () => Target<never>,
  upstream: upstreamTarget as () => Target<never>,
};

function option(name: string, env: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  if (at >= 0 && process.argv[at + 1] !== undefined) return process.argv[at + 1];
  return process.env[env] ?? fallback;
}

function integer(name: string, text: string): number {
  const value = Number(text.replaceAll("_", ""));
  if (!Number.isSafeInteger(value) || value < 0) {
    console.error(`fuzz: --${name} ${text} is not a whole number ≥ 0: give e.g. --${name} 1000000`);
    process.exit(2);
  }
  return value;
}

const targetName = option("target", "MXSCREEN_FUZZ_TARGET", "session");
const makeTarget = TARGETS[targetName];
if (makeTarget === undefined) {
  console.error(`fuzz: no target "${targetName}": the targets are ${Object.keys(TARGETS).join(", ")}`);
  process.exit(2);
}
const target = makeTarget();
const seed = integer("seed", option("seed", "MXSCREEN_FUZZ_SEED", String(Date.now() % 0x1_0000_0000)));
const runtime = runtimeName();
const replay = option("input", "MXSCREEN_FUZZ_INPUT", "");

if (replay !== "") {
  const index = integer("input", replay);
  const input = generate(target, seed, index);
  console.log(`${target.name} seed ${seed} input ${index}:\n${target.describe(input)}`);
  const failure = attempt(target, input);
  console.log(
    failure === undefined
      ? "no invariant broken"
      : `${failure.invariant}: ${failure.detail}\n${failure.evidence ?? ""}\n${failure.stack ?? ""}`,
  );
  process.exit(failure === undefined ? 0 : 1);
}

const count = integer("count", option("count", "MXSCREEN_FUZZ_COUNT", "10000000"));
console.log(`fuzz [${runtime}] target ${target.name}, seed ${seed}, ${count} inputs`);
let probesFailed = 0;
for (const probe of target.probes ?? []) {
  const failure = guarded(probe);
  if (failure === undefined) continue;
  probesFailed++;
  console.log(`${target.name}: ${failure.invariant}: ${failure.detail}${failure.stack ? `\n${failure.stack}` : ""}`);
}
const started = performance.now();
const result = fuzz(target, {
  seed,
  count,
  onProgress(done) {
    if (done % 200_000 !== 0) return;
    const seconds = (performance.now() - started) / 1000;
    console.log(`fuzz [${runtime}] ${done} inputs, ${Math.round(done / seconds)} inputs/s`);
  },
});
const seconds = result.ms / 1000;
if (result.coverage.size > 0) {
  const reached = [...result.coverage].sort((a, b) => b[1] - a[1]).map(([place, n]) => `${place} ${(100 * n / result.inputs).toFixed(1)}%`);
  console.log(`fuzz [${runtime}] inputs reaching each output: ${reached.join(", ")}`);
}
const text = report(target, seed, result);
if (text !== "") console.log(text);
const summary = {
  runtime,
  target: target.name,
  seed,
  inputs: result.inputs,
  failed: result.failed,
  probesFailed,
  distinct: result.found.length,
  seconds: Math.round(seconds * 10) / 10,
  inputsPerSecond: Math.round(result.inputs / seconds),
  callsPerSecond: Math.round(result.calls / seconds),
};
console.log(
  `fuzz [${runtime}] ${result.inputs} inputs in ${summary.seconds} s: ${summary.inputsPerSecond} inputs/s, ${summary.callsPerSecond} calls/s, ${result.failed} failed (${result.found.length} distinct)`,
);
console.log(`##mxscreen-fuzz ${JSON.stringify(summary)}`);
process.exit(result.failed + probesFailed > 0 ? 1 : 0);
