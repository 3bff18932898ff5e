import assert from "node:assert/strict";
import { DnsblVerdicts } from "../../src/dnsbl/dnsbl-verdicts.ts";
import { parseIP } from "../../src/ip/address.ts";
import { test } from "../harness.ts";

const PASS = {
  kind: "pass" as const,
  prefix: "192.0.2.1/32",
  createdAt: 1_000,
  expiresAt: 86_401_000,
  node: "a",
  check: "pregreet",
  reason: "passed",
};

test("a passed client's DNSBL verdict dates from its pass until this node renews it, and expires after its own TTL", () => {
  const verdicts = new DnsblVerdicts(3_600_000, 2);
  const ip = parseIP("192.0.2.1")!;
  assert.equal(verdicts.due(ip, PASS, 3_600_999), false);
  assert.equal(verdicts.due(ip, PASS, 3_601_000), true);
  verdicts.renewed(ip, 3_602_000);
  assert.equal(verdicts.due(ip, PASS, 7_201_999), false, "renewed: another hour");
  assert.equal(verdicts.due(ip, PASS, 7_202_000), true);
  verdicts.renewed(parseIP("192.0.2.2")!, 3_603_000);
  verdicts.renewed(parseIP("192.0.2.3")!, 3_604_000);
  assert.equal(
    verdicts.due(ip, PASS, 3_605_000),
    true,
    "past its bound the least recently renewed is forgotten, and merely looked up again",
  );
});
