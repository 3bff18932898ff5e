import assert from "node:assert/strict";
import { Greeter } from "../../src/gate/greeter.ts";
import type { GateConfig } from "../../src/gate/types.ts";
import { test } from "../harness.ts";
import { CONFIG as SESSION } from "../smtp/transcript.ts";

const CONFIG: GateConfig = {
  hostname: "mx.test.example",
  greetWaitMs: 6000,
  greetWaitStressMs: 2000,
  banAction: "reject",
  banEndsSessions: true,
  actions: {},
  checks: SESSION.checks,
  observe: false,
};
const BAN = {
  kind: "ban" as const,
  prefix: "192.0.2.1/32",
  createdAt: 0,
  expiresAt: 1e15,
  node: "a",
  check: "pregreet",
  reason: "PREGREET",
};
const enc = (s: string) => new TextEncoder().encode(s);

test("a new client gets the 220- teaser, then after the wait the final 220 and the session", () => {
  const g = new Greeter(CONFIG);
  assert.deepEqual(g.open({ kind: "new" }, 1000), [{ type: "write", text: "220-mx.test.example ESMTP\r\n" }]);
  assert.equal(g.deadline, 7000);
  assert.deepEqual(g.tick(6999), []);
  assert.deepEqual(g.tick(7000), [{ type: "write", text: "220 mx.test.example ESMTP\r\n" }, { type: "handoff", early: undefined }]);
});

test("under stress the greet wait is the short one", () => {
  const g = new Greeter(CONFIG);
  g.open({ kind: "new" }, 1000, true);
  assert.equal(g.deadline, 3000);
  assert.deepEqual(g.tick(3000), [{ type: "write", text: "220 mx.test.example ESMTP\r\n" }, { type: "handoff", early: undefined }]);
});

test("an early talker gets no reply, is dropped, and the finding carries its bytes and delay", () => {
  const g = new Greeter(CONFIG);
  g.open({ kind: "new" }, 1000);
  const actions = g.receive(enc("EHLO bot\r\n"), 1250);
  assert.equal(actions.some((a) => a.type === "write"), false);
  assert.deepEqual(actions, [{ type: "drop" }, {
    type: "conclude",
    finding: { event: "PREGREET", check: "pregreet", action: "ban", evidence: { after_ms: 250, sent: "EHLO bot\r\n", bytes: 10 } },
  }]);
});

test("pregreet with action ignore or observe mode logs and lets the session go on with the early bytes", () => {
  for (const config of [{ ...CONFIG, actions: { pregreet: "ignore" as const } }, { ...CONFIG, observe: true }]) {
    const g = new Greeter(config);
    g.open({ kind: "new" }, 0);
    assert.deepEqual(g.receive(enc("EHLO bot\r\n"), 10), []);
    const [, handoff] = g.tick(6000);
    assert.equal(handoff.type, "handoff");
    assert.deepEqual(handoff.type === "handoff" && handoff.early, enc("EHLO bot\r\n"));
    assert.equal(g.noted?.event, "PREGREET");
    assert.equal(g.noted?.action, config.observe ? "observe" : "ignore");
  }
});

test("banned clients get 554 5.7.1, or nothing with the drop action; passed clients the whole greeting at once", () => {
  const rejected = new Greeter(CONFIG).open({ kind: "banned", entry: BAN }, 0);
  assert.match((rejected[0] as { text: string }).text, /^554 5\.7\.1 /);
  assert.equal(rejected[1].type, "close");
  assert.equal(rejected[2].type, "conclude");
  const dropped = new Greeter({ ...CONFIG, banAction: "drop" }).open({ kind: "banned", entry: BAN }, 0);
  assert.equal(dropped[0].type, "drop");
  const passed = new Greeter(CONFIG).open({ kind: "passed", entry: { ...BAN, kind: "pass" } }, 0);
  assert.deepEqual(passed, [{ type: "write", text: "220 mx.test.example ESMTP\r\n" }, { type: "handoff", early: undefined }]);
});

test("a ban made during the greet wait: 421 4.7.1 instead of the final 220 (dropped with MXSCREEN_BAN_ACTION=drop), concluded BANNED", () => {
  const g = new Greeter(CONFIG);
  g.open({ kind: "new" }, 0);
  assert.deepEqual(g.banned(BAN), [
    { type: "write", text: "421 4.7.1 mx.test.example Service unavailable; client banned by policy, closing connection\r\n" },
    { type: "close" },
    {
      type: "conclude",
      finding: {
        event: "BANNED",
        check: "pregreet",
        action: "close",
        evidence: { ban: "192.0.2.1/32", reason: "PREGREET", by: "a", ended: "greet-wait" },
      },
    },
  ]);
  assert.deepEqual(g.tick(6000), [], "no 220 after it");
  const dropped = new Greeter({ ...CONFIG, banAction: "drop" });
  dropped.open({ kind: "new" }, 0);
  assert.deepEqual(dropped.banned(BAN).slice(0, 1), [{ type: "drop" }]);
  const handedOff = new Greeter(CONFIG);
  handedOff.open({ kind: "passed", entry: { ...BAN, kind: "pass" } }, 0);
  assert.deepEqual(handedOff.banned(BAN), [], "a session that began is the session's to end");
});
