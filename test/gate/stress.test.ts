import assert from "node:assert/strict";
import { Stress } from "../../src/gate/stress.ts";
import { test } from "../harness.ts";

test("stress starts at the threshold and ends only below four fifths of it", () => {
  const stress = new Stress(100);
  assert.equal(stress.update(99), undefined);
  assert.equal(stress.active, false);
  assert.equal(stress.update(100), true);
  assert.equal(stress.active, true);
  assert.equal(stress.update(101), undefined);
  assert.equal(stress.update(80), undefined, "80 is not below four fifths of 100");
  assert.equal(stress.active, true);
  assert.equal(stress.update(79), false);
  assert.equal(stress.active, false);
  assert.equal(stress.update(99), undefined);
});
