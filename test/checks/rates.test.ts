import assert from "node:assert/strict";
import { connRate } from "../../src/checks/conn-rate.ts";
import { ClientRates } from "../../src/gate/client-rates.ts";
import { parseIP } from "../../src/ip/address.ts";
import type { SessionFacts } from "../../src/smtp/types.ts";
import { WindowedCounts } from "../../src/store/windowed-counts.ts";
import { test } from "../harness.ts";
import { CONFIG, lineByLine, play, transcript } from "../smtp/transcript.ts";

const RATES = { ...CONFIG, checks: { ...CONFIG.checks, maxMsgRate: 3, maxMsgRatePrefix: 10, maxRcptRate: 4, maxRcptRatePrefix: 0 } };
const counts = (client: number, prefix = client) => ({ client, prefix, prefixKey: "192.0.2.0/24" });

test("msg-rate: two messages already counted fleet-wide this hour, the limit three: the second MAIL of this session is deferred, the null sender's too, and the session goes on", () => {
  const t = transcript(`
    C: HELO client.example
    S: 250 mx.test.example Hello client.example [192.0.2.1]
    C: MAIL FROM:<a@example.net>
    S: 250 2.1.0 Ok
    C: RSET
    S: 250 2.0.0 Ok
    C: MAIL FROM:<>
    S: 450 4.7.1 Error: too much mail from 192.0.2.1
    C: NOOP
    S: 250 2.0.0 Ok
  `);
  const { replies, session } = play(lineByLine(t.client), RATES, undefined, undefined, undefined, {
    dnsbl: [],
    rates: { messages: counts(2), recipients: counts(0) },
  });
  assert.equal(replies, t.server);
  assert.deepEqual(session.facts.findings.map((f) => [f.check, f.action, f.evidence]), [["msg-rate", "enforce", {
    limit: "client",
    key: "192.0.2.1",
    messages_per_hour: 4,
  }]]);
});

test("msg-rate: the network's count over its own limit defers a client whose address is under its limit; without rates (0) nothing is refused", () => {
  const prefixOver = play(lineByLine("HELO c.example\r\nMAIL FROM:<a@example.net>\r\n"), RATES, undefined, undefined, undefined, {
    dnsbl: [],
    rates: { messages: counts(0, 10), recipients: counts(0) },
  });
  assert.match(prefixOver.replies, /450 4\.7\.1 Error: too much mail from 192\.0\.2\.1\r\n$/);
  assert.deepEqual(prefixOver.session.facts.findings[0].evidence, { limit: "prefix", key: "192.0.2.0/24", messages_per_hour: 11 });
  const off = play(lineByLine("HELO c.example\r\nMAIL FROM:<a@example.net>\r\n"), CONFIG, undefined, undefined, undefined, {
    dnsbl: [],
    rates: { messages: counts(1000), recipients: counts(1000) },
  });
  assert.match(off.replies, /250 2\.1\.0 Ok\r\n$/);
});

test("rcpt-rate: three recipients counted this hour, the limit four: the second RCPT is deferred (450, not an error), the recipient accepted before stays", () => {
  const t = transcript(`
    C: HELO client.example
    S: 250 mx.test.example Hello client.example [192.0.2.1]
    C: MAIL FROM:<a@example.net>
    S: 250 2.1.0 Ok
    C: RCPT TO:<one@example.org>
    S: 250 2.1.5 Ok
    C: RCPT TO:<two@example.org>
    S: 450 4.7.1 <two@example.org>: Error: too many recipients from 192.0.2.1
    C: QUIT
    S: 221 2.0.0 Bye
  `);
  const { replies, session } = play(lineByLine(t.client), RATES, undefined, undefined, undefined, {
    dnsbl: [],
    rates: { messages: counts(0), recipients: counts(3) },
  });
  assert.equal(replies, t.server);
  assert.equal(session.facts.recipients, 1);
  assert.equal(session.facts.errors, 0);
  assert.deepEqual(session.facts.findings[0].evidence, {
    limit: "client",
    key: "192.0.2.1",
    recipients_per_hour: 5,
    rcpt: "two@example.org",
  });
});

test("conn-rate: over the client's or the network's limit (0: off) is a 421 4.7.0 naming the count", () => {
  const settings = { ...CONFIG.checks, maxConnRate: 3, maxConnRatePrefix: 5 };
  const facts = (client: number, prefix: number) => ({
    client: { address: "192.0.2.1" },
    breach: undefined,
    connectionRate: counts(client, prefix),
  });
  assert.equal(connRate.evaluate(facts(3, 3), settings), undefined);
  assert.deepEqual(connRate.evaluate(facts(4, 4), settings), {
    reply: "421 4.7.0 mx.test.example Error: too many connections from 192.0.2.1\r\n",
    evidence: { limit: "client", key: "192.0.2.1", connections_per_minute: 4 },
  });
  assert.deepEqual(connRate.evaluate(facts(1, 6), settings)?.evidence, { limit: "prefix", key: "192.0.2.0/24", connections_per_minute: 6 });
  assert.equal(connRate.evaluate(facts(100, 100), { ...settings, maxConnRate: 0, maxConnRatePrefix: 0 }), undefined);
});

test("ClientRates: counts only the rates that are set; connections per minute and a session's messages and recipients per hour, per address and per /24 or /64, other nodes' counts added", () => {
  const made = new Map<string, WindowedCounts>();
  const counter = (name: string, windowMs: number) => {
    const counts = new WindowedCounts(windowMs);
    made.set(name, counts);
    return counts;
  };
  const rates = new ClientRates({
    maxConnRate: 2,
    maxConnRatePrefix: 0,
    maxMsgRate: 0,
    maxMsgRatePrefix: 0,
    maxRcptRate: 0,
    maxRcptRatePrefix: 0,
  }, counter);
  assert.deepEqual([...made.keys()], ["conn-rate-client"], "a rate at 0 keeps no counter, writes no row");
  assert.equal(rates.session(parseIP("192.0.2.1")!, 0), undefined);
  made.get("conn-rate-client")!.setOther("192.0.2.1", 0, "node-b", 2, 0);
  assert.deepEqual(rates.connection(parseIP("192.0.2.1")!, 1_000), { client: 3, prefix: 0, prefixKey: "192.0.2.0/24" });
  assert.equal(rates.connection(parseIP("192.0.2.1")!, 61_000)?.client, 1, "the minute has passed for the others'");

  const all = new ClientRates({
    maxConnRate: 0,
    maxConnRatePrefix: 0,
    maxMsgRate: 5,
    maxMsgRatePrefix: 50,
    maxRcptRate: 5,
    maxRcptRatePrefix: 50,
  }, counter);
  const ended = { transactions: 2, recipients: 7 } as SessionFacts;
  all.ended(parseIP("2001:db8::1")!, ended, 0);
  all.ended(parseIP("2001:db8::2")!, ended, 1_000);
  assert.deepEqual(all.session(parseIP("2001:db8::1")!, 2_000), {
    messages: { client: 2, prefix: 4, prefixKey: "2001:db8::/64" },
    recipients: { client: 7, prefix: 14, prefixKey: "2001:db8::/64" },
  });
  assert.equal(all.session(parseIP("2001:db8::1")!, 3_700_000)?.messages.prefix, 0, "an hour later");
});
