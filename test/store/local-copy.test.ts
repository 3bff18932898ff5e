import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parsePrefix } from "../../src/ip/address.ts";
import { type CopiedEntry, LocalCopy } from "../../src/store/local-copy.ts";
import { test } from "../harness.ts";
import { tempDir } from "../helpers/server.ts";

const BAN: CopiedEntry = {
  kind: "ban",
  range: parsePrefix("192.0.2.0/24")!,
  createdAt: 1_000,
  expiresAt: null,
  node: "a",
  check: "pregreet",
  reason: "talks first",
};
const PASS: CopiedEntry = {
  kind: "pass",
  range: parsePrefix("2001:db8::/64")!,
  createdAt: 2_000,
  expiresAt: 99_000,
  node: "b",
  check: null,
  reason: null,
};
const ALLOW: CopiedEntry = {
  kind: "allow",
  range: parsePrefix("2001:db8::1:2/128")!,
  createdAt: 3_000.5,
  expiresAt: null,
  node: "mx-ünïcode",
  check: null,
  reason: "ours, «literally»",
};

const read = (copy: LocalCopy) => {
  const saved = copy.read();
  return saved && { savedAt: saved.savedAt, count: saved.count, entries: [...saved.entries] };
};

test("the local copy of the lists: none before the first write, the entries back as written, readable by this node only", async () => {
  const copy = new LocalCopy(join(tempDir(), "data", "lists-copy.bin"));
  assert.equal(copy.read(), undefined);
  await copy.write([BAN, PASS, ALLOW], 5_000);
  assert.deepEqual(read(copy), { savedAt: 5_000, count: 3, entries: [BAN, PASS, ALLOW] });
  assert.equal(statSync(copy.path).mode & 0o777, 0o600);
  await copy.write([PASS], 6_000);
  assert.deepEqual(read(copy), { savedAt: 6_000, count: 1, entries: [PASS] }, "a new copy replaces the old one whole");
  await copy.write([], 7_000);
  assert.deepEqual(read(copy), { savedAt: 7_000, count: 0, entries: [] }, "an empty copy still says the node saw its database");
});

test("the local copy: more entries than one chunk of the file, back in order", async () => {
  const copy = new LocalCopy(join(tempDir(), "lists-copy.bin"));
  const many: CopiedEntry[] = Array.from(
    { length: 50_000 },
    (_, i) => ({ ...BAN, range: { ip: { family: 4, value: (0x0a000000 + i) >>> 0 }, length: 32 }, reason: `r${i % 7}`, createdAt: i }),
  );
  await copy.write(many, 1);
  assert.deepEqual(read(copy)?.entries, many);
});

test("the local copy: a copy damaged anywhere, cut short, or not one at all is refused whole, naming the file and what is wrong", async () => {
  const dir = tempDir();
  const copy = new LocalCopy(join(dir, "lists-copy.bin"));
  await copy.write([BAN, PASS, ALLOW], 5_000);
  const good = readFileSync(copy.path);
  for (const at of [3, 20, 16 + 48 + 40, good.length - 30, good.length - 6]) {
    const bad = Buffer.from(good);
    bad[at] ^= 0x10;
    writeFileSync(copy.path, bad);
    assert.throws(
      () => copy.read(),
      /^Error: the local copy of the lists .*lists-copy\.bin is damaged \(.+\), so it is not used$/,
      `a bit flipped at byte ${at}`,
    );
  }
  writeFileSync(copy.path, good.subarray(0, good.length - 48));
  assert.throws(() => copy.read(), /lists-copy\.bin is damaged \(its trailer is missing: cut short\?\)/);
  writeFileSync(copy.path, "garbage");
  assert.throws(() => copy.read(), /lists-copy\.bin is damaged \(7 bytes, which no copy has\)/);
  writeFileSync(copy.path, good);
  assert.equal(copy.read()?.count, 3);
});

test("the local copy: one in the earlier format (JSON lines) is read until the first copy in this one replaces it", async () => {
  const dir = tempDir();
  const legacy = join(dir, "lists-copy.jsonl");
  const line = (e: CopiedEntry) =>
    JSON.stringify({
      kind: e.kind,
      prefix: e.range.ip.family === 4 ? "192.0.2.0/24" : "2001:db8::/64",
      createdAt: e.createdAt,
      expiresAt: e.expiresAt,
      node: e.node,
      check: e.check,
      reason: e.reason,
    });
  writeFileSync(legacy, [JSON.stringify({ format: "mxscreen-lists 1", savedAt: 4_000 }), line(BAN), "not json", line(PASS), ""].join("\n"));
  const copy = new LocalCopy(join(dir, "lists-copy.bin"));
  assert.deepEqual(read(copy), { savedAt: 4_000, count: 2, entries: [BAN, PASS] });
  await copy.write([PASS], 6_000);
  assert.equal(existsSync(legacy), false, "the old copy is gone once the new one is written");
  assert.deepEqual(read(copy)?.entries, [PASS]);
  const other = tempDir();
  writeFileSync(join(other, "lists-copy.jsonl"), '{"format":"something else"}\n');
  assert.throws(
    () => new LocalCopy(join(other, "lists-copy.bin")).read(),
    /^Error: the local copy of the lists .*lists-copy\.jsonl is damaged \(its header .* is not one this mxscreen writes\), so it is not used$/,
  );
});
