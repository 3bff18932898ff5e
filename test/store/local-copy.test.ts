import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LocalCopy } from "../../src/store/local-copy.ts";
import type { ListEntry } from "../../src/store/types.ts";
import { test } from "../harness.ts";
import { tempDir } from "../helpers/server.ts";

const BAN: ListEntry = { kind: "ban", prefix: "192.0.2.0/24", createdAt: 1_000, expiresAt: null, node: "a", check: "pregreet", reason: "talks first" };
const PASS: ListEntry = { kind: "pass", prefix: "2001:db8::/64", createdAt: 2_000, expiresAt: 99_000, node: "b", check: null, reason: null };

test("the local copy of the lists: none before the first write, the entries back as written, readable by this node only", () => {
  const copy = new LocalCopy(join(tempDir(), "data", "lists-copy.jsonl"));
  assert.equal(copy.read(), undefined);
  copy.write([BAN, PASS], 5_000);
  assert.deepEqual(copy.read(), { savedAt: 5_000, entries: [BAN, PASS] });
  assert.equal(statSync(copy.path).mode & 0o777, 0o600);
  copy.write([PASS], 6_000);
  assert.deepEqual(copy.read(), { savedAt: 6_000, entries: [PASS] }, "a new copy replaces the old one whole");
});

test("the local copy: a line that is no entry is skipped, a file that is no copy is refused with its name", () => {
  const dir = tempDir();
  const copy = new LocalCopy(join(dir, "lists-copy.jsonl"));
  copy.write([BAN, PASS], 5_000);
  const lines = readFileSync(copy.path, "utf8").split("\n");
  const bad = [{ ...BAN, kind: "deny" }, { ...BAN, prefix: "not-an-address" }, { ...BAN, expiresAt: "soon" }, "text"].map((v) => JSON.stringify(v));
  writeFileSync(copy.path, [lines[0], lines[1], ...bad, lines[2]].join("\n"));
  assert.deepEqual(copy.read()?.entries, [BAN, PASS]);
  writeFileSync(copy.path, "{\"format\":\"something else\"}\n");
  assert.throws(() => copy.read(), /lists-copy\.jsonl is not a copy of the lists written by this mxscreen/);
});
