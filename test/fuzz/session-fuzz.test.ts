import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { fuzz, generate, report, type Target } from "./engine.ts";
import { replyProblem } from "./reply-form.ts";
import { upstreamTarget } from "./upstream-target.ts";
import type { Rng } from "./rng.ts";
import {
  answer,
  check,
  clock,
  compareSplits,
  DEFAULT_SETUP,
  describe,
  hangUp,
  read,
  type SessionInput,
  sessionTarget,
  shutdown,
} from "./session-target.ts";

/** A short run of `npm run fuzz`: the same inputs every time, so a failure here replays with the printed seed and index. */
const SEEDS = [1, 2, 3];
const INPUTS_PER_SEED = 8000;

function seededRun<Input>(target: Target<Input>): void {
  const reports: string[] = [];
  for (const seed of SEEDS) {
    const result = fuzz(target, { seed, count: INPUTS_PER_SEED, shrinkRuns: 400 });
    if (result.found.length > 0) reports.push(report(target, seed, result));
  }
  assert.equal(reports.length, 0, `\n${reports.join("\n")}`);
}

test(
  "fuzz: seeded inputs keep every session invariant (no throw, well-formed replies, nothing after close, bounded output, same replies whatever the split)",
  () => {
    seededRun(sessionTarget());
  },
  { timeoutMs: 60_000 },
);

test("fuzz: the upstream machine answers every question once, in order, with nothing after its close, whatever the upstream sends", () => {
  seededRun(upstreamTarget());
}, { timeoutMs: 60_000 });

/** Each input below is the smallest the fuzzer found (or a hand-shortened one) for one bug: it fails until the bug is fixed. */
function regression(name: string, input: SessionInput): void {
  test(`fuzz regression: ${name}`, () => {
    const { failure } = check(input);
    const why = failure === undefined
      ? ""
      : `${failure.invariant}: ${failure.detail}\n${failure.evidence ?? ""}\n${failure.stack ?? ""}\n${describe(input)}`;
    assert.equal(failure, undefined, why);
  });
}

regression("a HELO name in raw UTF-8 is not echoed back: replies are printable ASCII", {
  setup: DEFAULT_SETUP,
  steps: [read("HELO caf\xc3\xa9.example\r\n")],
});

regression("a long EHLO name does not make a reply line longer than 512 octets (RFC 5321 4.5.3.1.5)", {
  setup: DEFAULT_SETUP,
  steps: [read(`EHLO ${"h".repeat(600)}.example\r\n`)],
});

regression("the TLS handshake's outcome arriving after the command timeout closed the session does not throw", {
  setup: { ...DEFAULT_SETUP, tls: true },
  steps: [read("EHLO client.example\r\n"), read("STARTTLS\r\n"), clock(300_000)],
});

regression("the upstream's answer arriving after the client hung up does not throw (issue 12 point 3)", {
  setup: { ...DEFAULT_SETUP, relay: true },
  steps: [read("EHLO client.example\r\nMAIL FROM:<>\r\n"), hangUp()],
});

regression("a shutdown during the sender domain's lookup does not close the session while the upstream is asked", {
  setup: { ...DEFAULT_SETUP, relay: true },
  steps: [read("EHLO client.example\r\nMAIL FROM:<user@example.net>\r\n"), shutdown()],
});

regression("the delivery outcome arriving after the client hung up does not throw", {
  setup: DEFAULT_SETUP,
  steps: [read("EHLO client.example\r\nMAIL FROM:<>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n.\r\n"), hangUp()],
});

regression("a failed delivery that is the twentieth error closes the session for good: no reply after the 421", {
  setup: DEFAULT_SETUP,
  // answer(1, 10): the delivery (question 0 is the HELO name's lookup) fails with the upstream's own 451 reply.
  steps: [
    read(
      `${
        "RCPT TO:<user@example.org>\r\n".repeat(19)
      }EHLO client.example\r\nMAIL FROM:<>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n.\r\nNOOP\r\n`,
    ),
    answer(1, 10),
  ],
});

regression("a bounce refused as fake that is the twentieth error ends with the 421 and close: no message-abort after them", {
  setup: { ...DEFAULT_SETUP, ownHosts: true },
  steps: [
    read(
      `${"RCPT TO:<user@example.org>\r\n".repeat(19)}HELO client.example\r\nMAIL FROM:<>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n.\r\n`,
    ),
  ],
});

test("fuzz: the reply check refuses what RFC 5321 4.2 does not allow and takes what it does", () => {
  assert.equal(replyProblem("250 2.0.0 Ok\r\n"), undefined);
  assert.equal(replyProblem("250-mx Hello\r\n250 SIZE 10\r\n"), undefined);
  assert.match(replyProblem("250 Ok\n")!, /CRLF/);
  assert.match(replyProblem("250-a\r\n251 b\r\n")!, /more than one code/);
  assert.match(replyProblem("250 a\r\n250 b\r\n")!, /space after its code/);
  assert.match(replyProblem("250-a\r\n")!, /has - after/);
  assert.match(replyProblem(`250 ${"x".repeat(507)}\r\n`)!, /512/);
  assert.equal(replyProblem(`250 ${"x".repeat(506)}\r\n`), undefined);
  assert.match(replyProblem("250 caf\u00e9\r\n")!, /outside ASCII/);
  assert.match(replyProblem("250 a\rb\r\n")!, /control character/);
  assert.match(replyProblem("Ok\r\n")!, /code/);
});

test("fuzz: the split comparison sees replies that depend on read boundaries (the pipelining check, enforced, does by definition)", () => {
  const pipelined: SessionInput = { setup: { ...DEFAULT_SETUP, strict: true }, steps: [read("EHLO client.example\r\n"), read("NOOP\r\n")] };
  const seen = compareSplits(pipelined, false);
  assert.equal(seen?.invariant, "same replies whatever the split");
  assert.match(seen!.evidence!, /whole: 554 5\.5\.0 .*synchronization.* \/ split: 250-mx/);
  assert.equal(compareSplits(pipelined), undefined, "with the pipelining check ignored, as the fuzzer runs it, the replies are the same");
});

/** A target with a planted bug: any input holding both 7 and 9 fails. */
function plantedTarget(): Target<number[]> {
  return {
    name: "planted",
    generate: (rng: Rng) => Array.from({ length: rng.between(0, 30) }, () => rng.below(10)),
    run: (input) => (input.includes(7) && input.includes(9) ? { invariant: "planted", detail: "7 and 9" } : undefined),
    *shrink(input) {
      for (let i = 0; i < input.length; i++) yield [...input.slice(0, i), ...input.slice(i + 1)];
    },
    describe: (input) => JSON.stringify(input),
    calls: 1,
  };
}

test("fuzz: the engine finds a planted bug, shrinks it to its smallest input and replays it from the seed and index", () => {
  const target = plantedTarget();
  const result = fuzz(target, { seed: 42, count: 200 });
  assert.equal(result.found.length, 1);
  const found = result.found[0];
  assert.deepEqual([...found.input].sort(), [7, 9]);
  assert.ok(found.count > 1);
  const replayed = generate(target, 42, found.index);
  assert.ok(replayed.includes(7) && replayed.includes(9), "the printed index regenerates the failing input");
  assert.deepEqual(generate(target, 42, 5), generate(target, 42, 5));
  assert.notDeepEqual(generate(target, 42, 5), generate(target, 43, 5));
});
