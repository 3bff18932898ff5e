import assert from "node:assert/strict";
import { readDecisions } from "../../src/store/decision-feed.ts";
import { readListFile } from "../../src/store/list-file.ts";
import { test } from "../harness.ts";

test("a list file: addresses and prefixes with reasons, comments and blank lines, Postfix postscreen_access_list cidr lines, each refusal with its line number", () => {
  const file = [
    "# our list",
    "192.0.2.7",
    "198.51.100.0/24   snowshoe run",
    "",
    "   # an indented comment",
    "203.0.113.0/24\treject",
    "[2001:db8::]/32 PERMIT our partner",
    "2001:db8:1::1 reject spam",
    "  continued reason",
    "192.0.2.1/24 reject",
    "192.0.2.128/25 dunno",
    "!192.0.2.0/24 reject",
    "if 10.0.0.0/8",
    "endif",
    "[192.0.2.9]\r",
  ].join("\n");
  assert.deepEqual([...readListFile(file)], [
    { type: "entry", line: 2, address: "192.0.2.7", list: undefined, reason: undefined },
    { type: "entry", line: 3, address: "198.51.100.0/24", list: undefined, reason: "snowshoe run" },
    { type: "entry", line: 6, address: "203.0.113.0/24", list: "ban", reason: undefined },
    { type: "entry", line: 7, address: "2001:db8::/32", list: "allow", reason: "our partner" },
    { type: "entry", line: 8, address: "2001:db8:1::1", list: "ban", reason: "spam continued reason" },
    {
      type: "refused",
      line: 10,
      text: "192.0.2.1/24 reject",
      error: "192.0.2.1/24 has host bits set beyond its prefix length (Postfix skips such a line too): write 192.0.2.0/24",
    },
    {
      type: "refused",
      line: 11,
      text: "192.0.2.128/25 dunno",
      error: "dunno has no equivalent in a list (there is no first-match order); leave the line out, or make it a permit",
    },
    {
      type: "refused",
      line: 12,
      text: "!192.0.2.0/24 reject",
      error:
        "Postfix's !pattern and if/endif have no equivalent in a list (allow always wins over a ban): write the entries they mean as plain lines",
    },
    {
      type: "refused",
      line: 13,
      text: "if 10.0.0.0/8",
      error:
        "Postfix's !pattern and if/endif have no equivalent in a list (allow always wins over a ban): write the entries they mean as plain lines",
    },
    {
      type: "refused",
      line: 14,
      text: "endif",
      error:
        "Postfix's !pattern and if/endif have no equivalent in a list (allow always wins over a ban): write the entries they mean as plain lines",
    },
    { type: "entry", line: 15, address: "192.0.2.9", list: undefined, reason: undefined },
  ]);
  assert.deepEqual(
    [...readListFile("192.0.2.1\n", 20_001)].map((l) => l.line),
    [20_001],
    "a piece of a longer file keeps its line numbers",
  );
});

test("decision feeds: entries, CrowdSec decisions with Go durations and scopes, and CrowdSec's stream with its deletions", () => {
  assert.deepEqual(readDecisions({ entries: [{ address: "192.0.2.7", ttl: "6h", reason: "feed" }] }), {
    add: [{ type: "entry", line: 1, address: "192.0.2.7", list: undefined, reason: "feed", ttl: "6h" }],
    remove: [],
  });
  const stream = readDecisions({
    new: [
      { value: "198.51.100.7", scope: "Ip", type: "ban", duration: "3h59m58.5s", scenario: "crowdsecurity/ssh-bf", origin: "crowdsec" },
      { value: "203.0.113.0/24", scope: "Range", type: "ban", duration: "720h" },
      { value: "FR", scope: "Country", type: "ban", duration: "1h" },
      { value: "192.0.2.8", scope: "Ip", type: "captcha", duration: "1h" },
      { value: "192.0.2.9", scope: "Ip", type: "ban", duration: "-5s" },
    ],
    deleted: [{ value: "192.0.2.10", scope: "Ip", type: "ban", duration: "0s" }],
  });
  assert.ok(!("error" in stream));
  assert.deepEqual(stream.add.slice(0, 2), [
    {
      type: "entry",
      line: 1,
      address: "198.51.100.7",
      list: undefined,
      reason: "crowdsecurity/ssh-bf",
      ttl: `${(3 * 3600 + 59 * 60 + 58.5) * 1000}ms`,
    },
    { type: "entry", line: 2, address: "203.0.113.0/24", list: undefined, reason: undefined, ttl: `${720 * 3_600_000}ms` },
  ]);
  assert.deepEqual(stream.add.slice(2).map((l) => l.type === "refused" && [l.line, l.error]), [
    [3, 'scope "Country" names no address: only Ip and Range decisions can be imported'],
    [4, 'type "captcha": only ban decisions can be imported (mxscreen has no captcha)'],
    [5, 'duration "-5s" is negative: the decision has expired'],
  ]);
  assert.deepEqual(stream.remove.map((l) => l.type === "entry" && [l.line, l.address]), [[6, "192.0.2.10"]]);
  assert.ok("error" in readDecisions({ nothing: true }));
  assert.ok("error" in readDecisions("192.0.2.7"));
});
