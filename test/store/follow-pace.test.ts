import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { FollowPace } from "../../src/store/follow-pace.ts";

function waits(pace: FollowPace, reads: number[]): number[] {
  return reads.map((changes) => pace.afterRead(changes));
}

test("follow pace: after a change found or written, four empty reads stay at the fast pace, then the wait doubles up to the idle pace", () => {
  const pace = new FollowPace(250, 5_000);
  assert.deepEqual(waits(pace, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), [250, 250, 250, 250, 500, 1_000, 2_000, 4_000, 5_000, 5_000]);
  assert.deepEqual(waits(pace, [3, 0, 0, 0, 0, 0]), [250, 250, 250, 250, 250, 500], "a change found");
  waits(pace, [0, 0, 0, 0]);
  assert.equal(pace.snap(), 250, "a write of this node's");
  assert.deepEqual(waits(pace, [0, 0, 0, 0, 0, 0]), [250, 250, 250, 250, 500, 1_000]);
});
