import assert from "node:assert/strict";
import { parseIP, parsePrefix } from "../../src/ip/address.ts";
import { PrefixIndex } from "../../src/store/prefix-index.ts";
import { test } from "../harness.ts";

const ip = (s: string) => parseIP(s)!;
const prefix = (s: string) => parsePrefix(s)!;

test("finds the most specific unexpired entry for IPv4 and IPv6", () => {
  const index = new PrefixIndex<{ expiresAt: number | null; name: string }>();
  index.set(prefix("192.0.2.0/24"), { expiresAt: null, name: "net" });
  index.set(prefix("192.0.2.9"), { expiresAt: 100, name: "host" });
  index.set(prefix("2001:db8:1:2::/64"), { expiresAt: null, name: "v6" });
  assert.equal(index.lookup(ip("192.0.2.9"), 50)?.name, "host");
  assert.equal(index.lookup(ip("192.0.2.9"), 100)?.name, "net", "an expired entry stops applying on time");
  assert.equal(index.lookup(ip("192.0.2.10"), 0)?.name, "net");
  assert.equal(index.lookup(ip("198.51.100.1"), 0), undefined);
  assert.equal(index.lookup(ip("2001:db8:1:2:dead:beef::1"), 0)?.name, "v6");
  assert.equal(index.lookup(ip("2001:db8:1:3::1"), 0), undefined);
  index.delete(prefix("192.0.2.0/24"));
  assert.equal(index.lookup(ip("192.0.2.10"), 0), undefined);
  assert.equal(index.sweep(1000), 1);
  assert.equal(index.size, 1);
});

test("every prefix length matches exactly the addresses it covers, compared with a plain check", () => {
  const next = (() => {
    let s = 12345;
    return () => (s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0);
  })();
  const randomV6 = () => ({ family: 6 as const, groups: Array.from({ length: 8 }, () => next() & 0xffff) });
  const flip = (ip: ReturnType<typeof randomV6>, bit: number) => {
    const groups = [...ip.groups];
    groups[Math.floor(bit / 16)] ^= 1 << (15 - (bit % 16));
    return { family: 6 as const, groups };
  };
  for (const length of [0, 1, 15, 16, 17, 31, 32, 33, 48, 56, 63, 64, 65, 96, 127, 128]) {
    const index = new PrefixIndex<{ expiresAt: number | null }>();
    const base = randomV6();
    index.set({ ip: base, length }, { expiresAt: null });
    assert.ok(index.lookup(base, 0), `/${length} covers its own address`);
    if (length < 128) assert.ok(index.lookup(flip(base, 127), 0), `/${length} covers an address differing after the prefix`);
    if (length > 0) assert.equal(index.lookup(flip(base, length - 1), 0), undefined, `/${length} does not cover one differing in its last prefix bit`);
    if (length < 128) {
      index.delete({ ip: flip(base, 127), length });
      assert.equal(index.lookup(base, 0), undefined, `/${length} deleted through another address it covers`);
      assert.equal(index.size, 0);
    }
  }
  for (const length of [0, 1, 8, 23, 24, 25, 31, 32]) {
    const index = new PrefixIndex<{ expiresAt: number | null }>();
    const value = next();
    index.set({ ip: { family: 4, value }, length }, { expiresAt: null });
    assert.ok(index.lookup({ family: 4, value }, 0));
    if (length > 0) assert.equal(index.lookup({ family: 4, value: (value ^ (1 << (32 - length))) >>> 0 }, 0), undefined, `/${length}`);
    if (length < 32) assert.ok(index.lookup({ family: 4, value: (value ^ 1) >>> 0 }, 0), `/${length} covers the last bit`);
  }
});

test("values: every entry held, at every IPv4 and IPv6 prefix length, once each (what the local copy is written from)", () => {
  const index = new PrefixIndex<{ expiresAt: number | null; name: string }>();
  const names = ["0.0.0.0/0", "10.0.0.0/8", "192.0.2.9/32", "::/0", "2001:db8::/32", "2001:db8:1:2::/64", "2001:db8::1/128", "2001:db8::/96"];
  for (const name of names) index.set(prefix(name), { expiresAt: null, name });
  index.set(prefix("10.0.0.0/8"), { expiresAt: null, name: "10.0.0.0/8" });
  index.delete(prefix("2001:db8::/96"));
  assert.deepEqual([...index.values()].map((v) => v.name).sort(), names.filter((n) => n !== "2001:db8::/96").sort());
  assert.equal([...index.values()].length, index.size);
});
