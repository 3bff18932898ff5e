import { inputSeed, Rng } from "./rng.ts";

/** An invariant that did not hold: which one, a detail without input-specific values (it names the bug), and evidence. */
export interface Failure {
  readonly invariant: string;
  readonly detail: string;
  readonly evidence?: string;
  readonly stack?: string;
}

/**
 * What the engine fuzzes. A target is one file: it generates an input from a PRNG, runs it
 * against the code under test checking its invariants, proposes smaller inputs for the
 * shrinker and writes an input out so a person can read and replay it.
 */
export interface Target<Input> {
  readonly name: string;
  generate(rng: Rng): Input;
  run(input: Input): Failure | undefined;
  /** Smaller variants of `input`, most promising first; the shrinker keeps the first that fails the same way. */
  shrink(input: Input): Iterable<Input>;
  describe(input: Input): string;
  /** Calls into the code under test made by the last `run`, for the calls per second. */
  readonly calls: number;
  /** Checks too slow or too coarse for every input (memory measured by the process's size): the long run makes each once. */
  readonly probes?: readonly (() => Failure | undefined)[];
  /** The named places (an output type, a state) the last `run` reached: shows whether inputs get deep. */
  readonly reached?: ReadonlySet<string>;
}

export interface Found<Input> {
  readonly signature: string;
  readonly failure: Failure;
  readonly index: number;
  readonly input: Input;
  /** How many inputs failed this way. */
  count: number;
}

export interface RunOptions {
  readonly seed: number;
  readonly count: number;
  /** Index of the first input: a long run can be cut into pieces that each replay alone. */
  readonly from?: number;
  /** Distinct failures kept (each shrunk once); further inputs failing a known way are only counted. */
  readonly maxFailures?: number;
  /** Runs the shrinker may spend on one failure. */
  readonly shrinkRuns?: number;
  readonly onProgress?: (done: number) => void;
}

export interface RunResult<Input> {
  readonly inputs: number;
  readonly calls: number;
  readonly failed: number;
  readonly found: Found<Input>[];
  /** How many inputs reached each place the target names. */
  readonly coverage: ReadonlyMap<string, number>;
  readonly ms: number;
}

/** A throw from the code under test is a failure like any other, with its stack for the report. */
export function guarded(run: () => Failure | undefined): Failure | undefined {
  try {
    return run();
  } catch (error) {
    const e = error as Error;
    return { invariant: "no throw", detail: String(e?.message ?? e), stack: String(e?.stack ?? "") };
  }
}

export function attempt<Input>(target: Target<Input>, input: Input): Failure | undefined {
  return guarded(() => target.run(input));
}

/** Numbers and quoted text vary from input to input; what is left names the bug. */
export function signatureOf(failure: Failure): string {
  return `${failure.invariant}: ${failure.detail.replace(/\d+/g, "N").slice(0, 160)}`;
}

export function generate<Input>(target: Target<Input>, seed: number, index: number): Input {
  return target.generate(new Rng(inputSeed(seed, index)));
}

export function fuzz<Input>(target: Target<Input>, options: RunOptions): RunResult<Input> {
  const started = performance.now();
  const from = options.from ?? 0;
  const maxFailures = options.maxFailures ?? 20;
  const bySignature = new Map<string, Found<Input>>();
  const coverage = new Map<string, number>();
  let calls = 0;
  let failed = 0;
  for (let i = 0; i < options.count; i++) {
    const index = from + i;
    const input = generate(target, options.seed, index);
    const failure = attempt(target, input);
    calls += target.calls;
    for (const place of target.reached ?? []) coverage.set(place, (coverage.get(place) ?? 0) + 1);
    if (i % 10_000 === 9_999) options.onProgress?.(i + 1);
    if (failure === undefined) continue;
    failed++;
    const signature = signatureOf(failure);
    const known = bySignature.get(signature);
    if (known !== undefined) {
      known.count++;
      continue;
    }
    if (bySignature.size >= maxFailures) continue;
    const shrunk = shrink(target, input, signature, options.shrinkRuns ?? 3000);
    bySignature.set(signature, { signature, failure: shrunk.failure ?? failure, index, input: shrunk.input, count: 1 });
  }
  return { inputs: options.count, calls, failed, found: [...bySignature.values()], coverage, ms: performance.now() - started };
}

/** Greedy: take the first smaller variant that fails the same way, again, until none does or the budget is spent. */
export function shrink<Input>(
  target: Target<Input>,
  input: Input,
  signature: string,
  budget: number,
): { input: Input; failure: Failure | undefined } {
  let current = input;
  let failure: Failure | undefined;
  let runs = 0;
  let progress = true;
  while (progress && runs < budget) {
    progress = false;
    for (const candidate of target.shrink(current)) {
      if (++runs > budget) break;
      const f = attempt(target, candidate);
      if (f !== undefined && signatureOf(f) === signature) {
        current = candidate;
        failure = f;
        progress = true;
        break;
      }
    }
  }
  return { input: current, failure };
}

/** What a person needs to see and replay each distinct failure. */
export function report<Input>(target: Target<Input>, seed: number, result: RunResult<Input>): string {
  const lines: string[] = [];
  for (const found of result.found) {
    lines.push(`${target.name}: ${found.signature}`);
    lines.push(
      `  seen in ${found.count} of ${result.inputs} inputs; first: seed ${seed} input ${found.index} (replay: npm run fuzz -- --target ${target.name} --seed ${seed} --input ${found.index})`,
    );
    if (found.failure.evidence !== undefined) lines.push(`  evidence: ${found.failure.evidence}`);
    if (found.failure.stack) lines.push(`  stack:\n${found.failure.stack.replace(/^/gm, "    ")}`);
    lines.push(`  smallest input found:\n${target.describe(found.input).replace(/^/gm, "    ")}`);
  }
  return lines.join("\n");
}
