import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { actionVariable, CHECKS } from "../../src/checks/registry.ts";
import { loadConfig } from "../../src/config/config.ts";
import { test } from "../harness.ts";

const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const HOST = { hostname: "mx.test.example", cpus: 2, openFiles: 20000 };

/** The README's table row that starts with `cell`, or undefined. */
function row(cell: string): string | undefined {
  return README.split("\n").find((line) => line.startsWith(`| \`${cell}\` |`));
}

test("every check has a row in the README's checks table with its tag, default action and knobs", () => {
  for (const check of CHECKS) {
    const line = row(check.id);
    assert.ok(line, `README: no row for check ${check.id}`);
    const cells = line.split(" | ");
    assert.equal(cells[1], `\`${check.tag}\``, `README: tag of ${check.id}`);
    assert.match(cells[4], new RegExp(`^${check.defaultAction}\\b`), `README: default action of ${check.id}`);
    for (const knob of Object.values(check.settings)) {
      assert.ok(cells[5].includes(`\`${knob.variable}\``), `README: ${check.id} does not name its knob ${knob.variable}`);
    }
  }
});

test("every knob a check declares is in the README's configuration table with the default it has", () => {
  for (const knob of CHECKS.flatMap((check) => Object.values(check.settings))) {
    const line = row(knob.variable);
    assert.ok(line, `README: no configuration row for ${knob.variable}`);
    assert.equal(line.split(" | ")[1], knob.fallback === "" ? "none" : `\`${knob.fallback}\``, `README: default of ${knob.variable}`);
  }
});

test("a check's knob and action are read from the environment, and a bad value names the variable", () => {
  const config = loadConfig(
    { MXSCREEN_MAX_RSET: "7", [actionVariable("pregreet")]: "ignore", [actionVariable("connection-limit")]: "ban" },
    HOST,
  );
  assert.equal(config.checks.maxResets, 7);
  assert.equal(config.checkActions.pregreet, "ignore");
  assert.equal(config.checkActions["connection-limit"], "ban");
  assert.equal(loadConfig({}, HOST).checkActions.pregreet, "ban");
  assert.throws(
    () => loadConfig({ MXSCREEN_MAX_RSET: "0" }, HOST),
    /MXSCREEN_MAX_RSET="0" is not valid: expected a whole number from 1 to 1000/,
  );
  assert.deepEqual(loadConfig({}, HOST).unknownVariables, []);
  assert.deepEqual(loadConfig({ MXSCREEN_MAX_RSET: "5" }, HOST).unknownVariables, [], "a declared knob is not reported as a typo");
});

test("no two checks share an id or declare the same knob, which would read one setting for both", () => {
  const ids = CHECKS.map((check) => check.id);
  assert.deepEqual(ids.filter((id, i) => ids.indexOf(id) !== i), []);
  const knobs = CHECKS.flatMap((check) => Object.entries(check.settings).map(([key, knob]) => [key, knob.variable]));
  const keys = knobs.map(([key]) => key);
  const variables = knobs.map(([, variable]) => variable);
  assert.deepEqual(keys.filter((key, i) => keys.indexOf(key) !== i), []);
  assert.deepEqual(variables.filter((variable, i) => variables.indexOf(variable) !== i), []);
  assert.ok(!keys.includes("hostname"), "hostname is every check's, set by the configuration");
});
