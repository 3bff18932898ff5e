import assert from "node:assert/strict";
import { loadConfig } from "../../src/config/config.ts";
import { ConfigError } from "../../src/config/config-error.ts";
import { test } from "../harness.ts";

const HOST = { hostname: "mx.test.example", cpus: 2, openFiles: 20_000 };

test("the estimate's windows: 7d and 4h by default, what each check does here, and a window no longer than the retry window refused", () => {
  const config = loadConfig({ MXSCREEN_ACTION_HELO_SYNTAX: "ignore" }, HOST);
  assert.deepEqual([config.observe.windowMs, config.observe.retryWindowMs], [7 * 86_400_000, 4 * 3_600_000]);
  assert.deepEqual([config.observe.actions["helo-syntax"], config.observe.actions.ptr, config.observe.actions.pregreet], [
    "ignore",
    "ignore",
    "ban",
  ]);
  assert.equal(loadConfig({ MXSCREEN_MODE: "observe" }, HOST).observe.actions.pregreet, "observe");
  assert.throws(
    () => loadConfig({ MXSCREEN_OBSERVE_WINDOW: "4h" }, HOST),
    (error: Error) =>
      error instanceof ConfigError &&
      /MXSCREEN_OBSERVE_WINDOW="4h" is not valid: expected a duration longer than MXSCREEN_OBSERVE_RETRY_WINDOW/.test(error.message),
  );
});
