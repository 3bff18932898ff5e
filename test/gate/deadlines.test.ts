import assert from "node:assert/strict";
import { Deadlines } from "../../src/gate/deadlines.ts";
import { test } from "../harness.ts";

test("deadlines fire once their time has passed, never early, and not once cancelled", () => {
  let now = 1_000;
  const deadlines = new Deadlines(50, () => now);
  const fired: string[] = [];
  const a = { expire: () => void fired.push("a") };
  const b = { expire: () => void fired.push("b") };
  const c = { expire: () => void fired.push("c") };
  deadlines.add(1_120, a);
  deadlines.add(1_020, b);
  deadlines.add(1_120, c);
  assert.equal(deadlines.size, 3);
  now = 1_010;
  deadlines.tick();
  assert.deepEqual(fired, []);
  now = 1_050;
  deadlines.tick();
  assert.deepEqual(fired, ["b"], "b's slot ends at 1,050");
  deadlines.cancel(1_120, c);
  now = 1_119;
  deadlines.tick();
  assert.deepEqual(fired, ["b"], "a is not due before 1,120");
  now = 1_150;
  deadlines.tick();
  assert.deepEqual(fired, ["b", "a"]);
  assert.equal(deadlines.size, 0);
});

test("deadlines run on a real timer, and the timer stops when none is left", async () => {
  const deadlines = new Deadlines(20);
  const started = Date.now();
  const at = await new Promise<number>((resolve) => deadlines.add(started + 60, { expire: () => resolve(Date.now()) }));
  assert.ok(at - started >= 60, `fired after ${at - started} ms`);
  assert.equal(deadlines.size, 0);
});
