import assert from "node:assert/strict";
import { allowedByName } from "../../src/gate/allow-by-name.ts";
import { Greeter } from "../../src/gate/greeter.ts";
import { test } from "../harness.ts";
import { CONFIG as SESSION } from "../smtp/transcript.ts";

test("a .domain allow entry matches a forward-confirmed name under it, and nothing else", () => {
  const domains = [".lists.example"];
  assert.equal(
    allowedByName({ status: "pass", name: "Mail.Lists.Example." }, domains),
    "MXSCREEN_ALLOW .lists.example (mail.lists.example)",
  );
  assert.equal(allowedByName({ status: "pass", name: "lists.example" }, domains), undefined, "the suffix names subdomains");
  assert.equal(allowedByName({ status: "pass", name: "evil-lists.example" }, domains), undefined);
  assert.equal(
    allowedByName({ status: "fail", names: ["mail.lists.example"] }, domains),
    undefined,
    "an unconfirmed PTR is anyone's claim",
  );
  assert.equal(allowedByName({ status: "none" }, domains), undefined);
});

test("release ends the greet wait at once with the final 220 and the session", () => {
  const g = new Greeter({
    hostname: "mx.test.example",
    greetWaitMs: 6000,
    greetWaitStressMs: 2000,
    banAction: "reject",
    banEndsSessions: true,
    actions: {},
    checks: SESSION.checks,
    observe: false,
  });
  g.open({ kind: "new" }, 0);
  assert.deepEqual(g.release(), [{ type: "write", text: "220 mx.test.example ESMTP\r\n" }, { type: "handoff", early: undefined }]);
  assert.deepEqual(g.release(), [], "only once");
  assert.deepEqual(g.tick(6000), []);
});
