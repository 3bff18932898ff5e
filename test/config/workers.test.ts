import assert from "node:assert/strict";
import { loadConfig } from "../../src/config/config.ts";
import { test } from "../harness.ts";

const host = (cpus: number) => ({ hostname: "mx1.example.net", cpus, openFiles: 20_000 });

test("MXSCREEN_WORKERS=auto, the default: inline on one or two cores, one worker per core above", () => {
  for (const [cpus, workers] of [[1, 0], [2, 0], [3, 3], [16, 16], [512, 256]]) {
    assert.equal(loadConfig({}, host(cpus)).workers, workers, `${cpus} cores, unset`);
    assert.equal(loadConfig({ MXSCREEN_WORKERS: "auto" }, host(cpus)).workers, workers, `${cpus} cores, auto`);
  }
  assert.equal(loadConfig({ MXSCREEN_WORKERS: " AUTO " }, host(8)).workers, 8);
  assert.equal(loadConfig({ MXSCREEN_WORKERS: "3" }, host(2)).workers, 3, "a number is taken as it is");
  assert.equal(loadConfig({ MXSCREEN_WORKERS: "0" }, host(16)).workers, 0);
  assert.throws(
    () => loadConfig({ MXSCREEN_WORKERS: "half" }, host(2)),
    /MXSCREEN_WORKERS="half" is not valid: expected auto, or a whole number from 0 to 256/,
  );
  assert.throws(
    () => loadConfig({ MXSCREEN_WORKERS: "300" }, host(2)),
    /MXSCREEN_WORKERS="300" is not valid: expected a whole number from 0 to 256/,
  );
});
