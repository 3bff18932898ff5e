import assert from "node:assert/strict";
import { join } from "node:path";
import { type ClientEvidence, describeRate, estimate, judge, type Judgement } from "../../src/store/observe-estimate.ts";
import { observedChecks } from "../../src/store/observed-checks.ts";
import { Store } from "../../src/store/store.ts";
import { onCleanup, test } from "../harness.ts";
import { tempDir } from "../helpers/server.ts";

const NOTHING: ClientEvidence = { dnswl: false, convicted: false, tempfailAt: null, deliveredAfterTempfail: false, passedAfter: false };
const HOUR = 3_600_000;

test("a client is judged by the strongest evidence: DNSWL, then a ban or DNSBL listing, then a retry or clean pass, then a 4xx left unanswered", () => {
  const now = 10 * HOUR;
  assert.deepEqual(judge(NOTHING, now, HOUR), { kind: "unknown", reason: "no-evidence" });
  assert.deepEqual(judge({ ...NOTHING, tempfailAt: now - HOUR + 1 }, now, HOUR), { kind: "unknown", reason: "retry-pending" });
  assert.deepEqual(judge({ ...NOTHING, tempfailAt: now - HOUR }, now, HOUR), { kind: "bot", reason: "no-retry" });
  assert.deepEqual(judge({ ...NOTHING, tempfailAt: now - 5 * HOUR, deliveredAfterTempfail: true }, now, HOUR), {
    kind: "legitimate",
    reason: "retried",
  });
  assert.deepEqual(judge({ ...NOTHING, tempfailAt: now - 5 * HOUR, passedAfter: true }, now, HOUR), {
    kind: "legitimate",
    reason: "clean-pass",
  });
  assert.deepEqual(judge({ ...NOTHING, convicted: true, deliveredAfterTempfail: true, tempfailAt: 0 }, now, HOUR), {
    kind: "bot",
    reason: "convicted",
  });
  assert.deepEqual(judge({ ...NOTHING, dnswl: true, convicted: true }, now, HOUR), { kind: "legitimate", reason: "dnswl" });
});

test("the rate is legitimate over clients with evidence, its range counts the unknown ones as bots, then as legitimate", () => {
  const JUDGED: Record<Judgement["kind"], Judgement> = {
    legitimate: { kind: "legitimate", reason: "retried" },
    bot: { kind: "bot", reason: "no-retry" },
    unknown: { kind: "unknown", reason: "no-evidence" },
  };
  const j = (kind: Judgement["kind"]) => JUDGED[kind];
  const e = estimate("helo-syntax", [
    { hits: 3, judgement: j("legitimate") },
    { hits: 1, judgement: j("bot") },
    { hits: 1, judgement: j("bot") },
    { hits: 2, judgement: j("bot") },
    { hits: 1, judgement: j("unknown") },
  ], false);
  assert.equal(e.clients, 5);
  assert.equal(e.hits, 8);
  assert.deepEqual([e.legitimate, e.bot, e.unknown], [1, 3, 1]);
  assert.equal(e.falsePositiveRate, 0.25);
  assert.deepEqual(e.range, [0.2, 0.4]);
  assert.equal(e.reasons.retried, 1);
  assert.equal(e.reasons["no-retry"], 3);
  assert.equal(describeRate(e), "25% (1 of 4 with evidence; 20%–40% counting the 1 unknown)");
  const none = estimate("ptr", [{ hits: 1, judgement: j("unknown") }], false);
  assert.equal(none.falsePositiveRate, null);
  assert.equal(describeRate(none), "no evidence yet (1 unknown)");
});

async function store(): Promise<Store> {
  const s = await Store.open({ url: `file:${join(tempDir(), "observe.db")}`, node: "n1" }, (e) => assert.fail(e));
  onCleanup(() => s.close());
  return s;
}

test("from the events table: hits of checks in ignore or observe, joined with what each client did next on any node", async () => {
  const s = await store();
  const t0 = Date.now() - 10 * HOUR;
  const event = (
    at: number,
    node: string,
    ip: string,
    event: string,
    check: string,
    action: string,
    evidence: Record<string, unknown> = {},
  ) => s.recordEvent({ at, clientIp: ip, clientPort: 25, event, check, action, evidence: { ...evidence } });
  // A real MTA: HELO hit and greylisted on n1, delivered on n2 an hour later.
  event(t0, "n1", "192.0.2.1", "GREYLIST", "greylist", "enforce", { tempfails: 1, messages: 0 });
  event(t0, "n1", "192.0.2.1", "HELO", "helo-syntax", "ignore");
  // A bot: the same, and never again.
  event(t0, "n1", "192.0.2.2", "GREYLIST", "greylist", "enforce", { tempfails: 1 });
  event(t0, "n1", "192.0.2.2", "HELO", "helo-syntax", "ignore");
  // Pipelining observed; its client later banned for a pregreet.
  event(t0, "n1", "192.0.2.3", "PIPELINING", "pipelining", "observe");
  event(t0 + HOUR, "n1", "192.0.2.3", "PREGREET", "pregreet", "ban");
  // Only a PTR note, then nothing: unknown.
  event(t0, "n1", "192.0.2.4", "PASS NEW", "none", "pass", { messages: 1 });
  event(t0, "n1", "192.0.2.4", "PTR", "ptr", "ignore");
  // An enforced hit is no part of the estimate.
  event(t0, "n1", "192.0.2.5", "NON-SMTP", "non-smtp", "enforce");
  // Outside the window.
  event(t0 - 8 * 24 * HOUR, "n1", "192.0.2.6", "HELO", "helo-syntax", "ignore");
  assert.ok(await s.flush());
  // The later delivery, recorded as another node would have recorded it.
  await s.db.insertInto("events").values({
    at: t0 + HOUR,
    node: "n2",
    client_ip: "192.0.2.1",
    client_port: 26,
    event: "HELO",
    check_id: "helo-syntax",
    action: "ignore",
    evidence: '{"messages":1}',
    op_id: null,
  }).execute();

  const result = await observedChecks(s.db, Date.now(), {
    windowMs: 7 * 24 * HOUR,
    retryWindowMs: 4 * HOUR,
    dnswlThreshold: -1,
    actions: { "helo-syntax": "enforce" },
  });
  const by = Object.fromEntries(result.checks.map((c) => [c.check, c]));
  assert.deepEqual(
    [by["helo-syntax"].action, by.ptr.action],
    ["enforce", null],
    "switched to enforce since: still shown, with what it does now",
  );
  assert.deepEqual(Object.keys(by).sort(), ["helo-syntax", "pipelining", "ptr"]);
  const helo = by["helo-syntax"];
  assert.deepEqual(
    [helo.clients, helo.hits, helo.legitimate, helo.bot, helo.unknown],
    [2, 3, 1, 1, 0],
    "one client across two nodes, one bot; the old hit left out",
  );
  assert.equal(helo.falsePositiveRate, 0.5);
  assert.deepEqual([by.pipelining.bot, by.pipelining.reasons.convicted], [1, 1]);
  assert.deepEqual([by.ptr.unknown, by.ptr.falsePositiveRate], [1, null]);

  // Hits younger than the retry window are left out: their clients had no time to come back.
  const early = await observedChecks(s.db, t0 + HOUR, { windowMs: 7 * 24 * HOUR, retryWindowMs: 4 * HOUR, dnswlThreshold: -1 });
  assert.deepEqual(early.checks.map((c) => c.check), []);
  assert.equal(early.until, t0 - 3 * HOUR);

  // A DNSWL score in any of its sessions makes a client legitimate, whatever else.
  await s.db.insertInto("events").values({
    at: t0 + 2 * HOUR,
    node: "n2",
    client_ip: "192.0.2.3",
    client_port: 27,
    event: "PASS NEW",
    check_id: "none",
    action: "pass",
    evidence: '{"dnsbl_score":-4}',
    op_id: null,
  }).execute();
  const listed = await observedChecks(s.db, Date.now(), { windowMs: 7 * 24 * HOUR, retryWindowMs: 4 * HOUR, dnswlThreshold: -1 });
  assert.deepEqual(listed.checks.find((c) => c.check === "pipelining")!.reasons.dnswl, 1);

  // The newest hits only, when there are more than the sample.
  const sampled = await observedChecks(s.db, Date.now(), { windowMs: 7 * 24 * HOUR, retryWindowMs: 4 * HOUR, dnswlThreshold: -1 }, 2);
  const sampledHelo = sampled.checks.find((c) => c.check === "helo-syntax")!;
  assert.deepEqual([sampledHelo.hits, sampledHelo.sampled], [2, true]);
});
