import assert from "node:assert/strict";
import { formatPrefix, type IP, mask, parseIP, parsePrefix, type Prefix } from "../../src/ip/address.ts";
import { type IndexedChange, ListIndex } from "../../src/store/prefix-index.ts";
import type { ListEntry, ListKind } from "../../src/store/types.ts";
import { test } from "../harness.ts";

const ip = (s: string) => parseIP(s)!;
const prefix = (s: string) => parsePrefix(s)!;
const change = (kind: ListKind, p: Prefix, fields: Partial<IndexedChange> = {}): IndexedChange => ({
  kind,
  prefix: p,
  op: "set",
  createdAt: 1,
  expiresAt: null,
  node: "mx1",
  check: "pregreet",
  reason: "PREGREET",
  ...fields,
});

/** The fields as a log line or the API would read them. */
const read = (entry: ListEntry | undefined) =>
  entry &&
  {
    kind: entry.kind,
    prefix: entry.prefix,
    createdAt: entry.createdAt,
    expiresAt: entry.expiresAt,
    node: entry.node,
    check: entry.check,
    reason: entry.reason,
  };

test("finds the most specific unexpired entry for IPv4 and IPv6, with who made it", () => {
  const index = new ListIndex();
  index.apply(change("ban", prefix("192.0.2.0/24"), { node: "mx2", check: null, reason: null }));
  index.apply(change("ban", prefix("192.0.2.9"), { expiresAt: 100 }));
  index.apply(change("ban", prefix("2001:db8:1:2::/64")));
  assert.deepEqual(read(index.lookup("ban", ip("192.0.2.9"), 50)), {
    kind: "ban",
    prefix: "192.0.2.9/32",
    createdAt: 1,
    expiresAt: 100,
    node: "mx1",
    check: "pregreet",
    reason: "PREGREET",
  });
  assert.equal(index.lookup("ban", ip("192.0.2.9"), 100)?.prefix, "192.0.2.0/24", "an expired entry stops applying on time");
  assert.deepEqual(read(index.lookup("ban", ip("192.0.2.10"), 0)), {
    kind: "ban",
    prefix: "192.0.2.0/24",
    createdAt: 1,
    expiresAt: null,
    node: "mx2",
    check: null,
    reason: null,
  });
  assert.equal(index.lookup("pass", ip("192.0.2.10"), 0), undefined, "kinds are apart");
  assert.equal(index.lookup("ban", ip("198.51.100.1"), 0), undefined);
  assert.equal(index.lookup("ban", ip("2001:db8:1:2:dead:beef::1"), 0)?.prefix, "2001:db8:1:2::/64");
  assert.equal(index.lookup("ban", ip("2001:db8:1:3::1"), 0), undefined);
  index.apply(change("ban", prefix("192.0.2.0/24"), { op: "remove", createdAt: 2 }));
  assert.equal(index.lookup("ban", ip("192.0.2.10"), 0), undefined);
  assert.equal(index.size("ban"), 2);
  assert.equal(index.sweep(1000, 0), 1, "the expired host entry is swept; the removal's version is kept");
  assert.equal(index.size("ban"), 1);
});

test("the newer change wins whatever order the changes arrive in, removals included, until their version is swept", () => {
  const index = new ListIndex();
  const p = prefix("203.0.113.7");
  assert.ok(index.apply(change("ban", p, { op: "remove", createdAt: 20 })));
  assert.equal(index.apply(change("ban", p, { createdAt: 10 })), false, "an older ban arriving after a newer removal is ignored");
  assert.equal(index.lookup("ban", ip("203.0.113.7"), 0), undefined);
  assert.ok(index.apply(change("ban", p, { createdAt: 30 })));
  assert.equal(index.lookup("ban", ip("203.0.113.7"), 0)?.createdAt, 30);
  assert.ok(index.apply(change("ban", p, { createdAt: 5, node: "cli" }), true), "a forced change (this node's own) applies anyway");
  assert.equal(index.lookup("ban", ip("203.0.113.7"), 0)?.node, "cli");
  index.apply(change("ban", p, { op: "remove", createdAt: 40 }));
  assert.equal(index.sweep(0, 41), 0);
  assert.ok(index.apply(change("ban", p, { createdAt: 10 })), "once the removal's version is swept, an old change applies again");
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
    const index = new ListIndex();
    const base = randomV6();
    index.apply(change("ban", { ip: base, length }));
    assert.ok(index.lookup("ban", base, 0), `/${length} covers its own address`);
    if (length < 128) assert.ok(index.lookup("ban", flip(base, 127), 0), `/${length} covers an address differing after the prefix`);
    if (length > 0) {
      assert.equal(
        index.lookup("ban", flip(base, length - 1), 0),
        undefined,
        `/${length} does not cover one differing in its last prefix bit`,
      );
    }
    if (length < 128) {
      index.apply(change("ban", { ip: flip(base, 127), length }, { op: "remove", createdAt: 2 }));
      assert.equal(index.lookup("ban", base, 0), undefined, `/${length} removed through another address it covers`);
      assert.equal(index.size("ban"), 0);
    }
  }
  for (const length of [0, 1, 8, 23, 24, 25, 31, 32]) {
    const index = new ListIndex();
    const value = next();
    index.apply(change("allow", { ip: { family: 4, value }, length }));
    assert.ok(index.lookup("allow", { family: 4, value }, 0));
    if (length > 0) {
      assert.equal(index.lookup("allow", { family: 4, value: (value ^ (1 << (32 - length))) >>> 0 }, 0), undefined, `/${length}`);
    }
    if (length < 32) assert.ok(index.lookup("allow", { family: 4, value: (value ^ 1) >>> 0 }, 0), `/${length} covers the last bit`);
  }
});

test("a table grown past many resizes, then mostly swept, still finds exactly what is left", () => {
  const index = new ListIndex();
  const host = (i: number): IP => ({ family: 4, value: (0x0a000000 + i * 7919) >>> 0 });
  const net = (i: number): IP => ({ family: 6, groups: [0x2001, 0xdb8, i >>> 16, i & 0xffff, 0, 0, 0, 1] });
  const n = 50_000;
  for (let i = 0; i < n; i++) {
    index.apply(change("ban", { ip: host(i), length: 32 }, { expiresAt: i % 3 === 0 ? null : 10 }));
    index.apply(change("pass", { ip: net(i), length: 64 }, { expiresAt: i % 2 === 0 ? null : 10 }));
  }
  assert.equal(index.size("ban"), n);
  // A bounded sweep takes part of the table, and the next ones go on from there.
  const first = index.sweep(10, 0, 4096);
  assert.ok(first > 0 && first < 4096, `${first} expired entries in the first 4,096 slots`);
  let swept = first;
  for (let i = 0; i < 100 && swept < n - Math.ceil(n / 3) + Math.floor(n / 2); i++) swept += index.sweep(10, 0, 4096);
  assert.equal(swept, n - Math.ceil(n / 3) + Math.floor(n / 2));
  for (let i = 0; i < n; i++) {
    assert.equal(index.lookup("ban", host(i), 0) !== undefined, i % 3 === 0, `host ${i}`);
    assert.equal(index.lookup("pass", net(i), 0) !== undefined, i % 2 === 0, `net ${i}`);
  }
  assert.equal(index.size("ban"), Math.ceil(n / 3));
  assert.equal(index.size("pass"), Math.ceil(n / 2));
});

test("short IPv4 prefixes, whose lookups skip the table through a bitmap, are found as a plain check finds them, before and after sweeps and removals", () => {
  const index = new ListIndex();
  const net = (length: number, i: number): Prefix => ({
    ip: { family: 4, value: length === 0 ? 0 : ((Math.imul(i, 0x9e3779b1) >>> (32 - length)) << (32 - length)) >>> 0 },
    length,
  });
  const live = new Map<string, Prefix & { expiresAt: number }>();
  const add = (p: Prefix, expiresAt: number, createdAt = 1) => {
    index.apply(change("ban", p, { expiresAt: expiresAt === Infinity ? null : expiresAt, createdAt }));
    live.set(formatPrefix(p), { ...p, expiresAt });
  };
  for (const length of [0, 8, 16, 24, 32]) {
    for (let i = 0; i < (length === 0 ? 1 : 300); i++) add(net(length, i), i % 2 === 0 ? Infinity : 10);
  }
  const expected = (address: IP, now: number) => {
    let best: Prefix | undefined;
    for (const p of live.values()) {
      if (p.expiresAt <= now || (best && best.length >= p.length)) continue;
      if (formatPrefix({ ip: mask(address, p.length), length: p.length }) === formatPrefix(p)) best = p;
    }
    return best && formatPrefix(best);
  };
  const probes: IP[] = [];
  for (const p of live.values()) probes.push({ family: 4, value: ((p.ip as { value: number }).value + 1) >>> 0 });
  for (let i = 0; i < 500; i++) probes.push({ family: 4, value: Math.imul(i, 0x85ebca6b) >>> 0 });
  const compare = (now: number, when: string) => {
    for (const address of probes) {
      assert.equal(
        index.lookupAll(address, now).ban?.prefix,
        expected(address, now),
        `${formatPrefix({ ip: address, length: 32 })} ${when}`,
      );
    }
  };
  compare(0, "before the sweep");
  index.sweep(10, 0);
  for (const [key, p] of live) if (p.expiresAt <= 10) live.delete(key);
  compare(10, "after the sweep");
  for (let i = 0; i < 300; i += 3) {
    index.apply(change("ban", net(24, i), { op: "remove", createdAt: 5 }));
    live.delete(formatPrefix(net(24, i)));
    add(net(16, i + 1), Infinity, 5);
  }
  compare(10, "after removals and new entries");
});

test("reasons are held once each, up to 65,535 distinct ones; past that an entry's reason is left to the database", () => {
  const index = new ListIndex();
  const host = (i: number): IP => ({ family: 4, value: (0x0b000000 + i) >>> 0 });
  for (let i = 0; i < 65_540; i++) index.apply(change("ban", { ip: host(i), length: 32 }, { reason: `line ${i}` }));
  assert.equal(index.lookup("ban", host(0), 0)?.reason, "line 0");
  assert.equal(index.lookup("ban", host(65_534), 0)?.reason, "line 65534");
  assert.equal(index.lookup("ban", host(65_535), 0)?.reason, null);
  index.apply(change("ban", { ip: host(65_539), length: 32 }, { reason: "line 7", createdAt: 2 }));
  assert.equal(index.lookup("ban", host(65_539), 0)?.reason, "line 7", "a reason already held is shared");
});

test("entries: every entry of a list in force, at every IPv4 and IPv6 prefix length, once each, with who made it (what the local copy is written from)", () => {
  const index = new ListIndex();
  const names = [
    "0.0.0.0/0",
    "10.0.0.0/8",
    "192.0.2.9/32",
    "::/0",
    "2001:db8::/32",
    "2001:db8:1:2::/64",
    "2001:db8::1/128",
    "2001:db8::/96",
    "198.51.100.0/24",
  ];
  for (const name of names) index.apply(change("ban", prefix(name), { reason: `r ${name}` }));
  index.apply(change("ban", prefix("10.0.0.0/8"), { createdAt: 2, reason: "again" }));
  index.apply(change("ban", prefix("2001:db8::/96"), { op: "remove", createdAt: 2 }));
  index.apply(change("ban", prefix("198.51.100.0/24"), { createdAt: 3, expiresAt: 50 }));
  index.apply(change("pass", prefix("203.0.113.7")));
  const held = [...index.entries("ban", 100)].map(read);
  const expected = names.filter((n) => n !== "2001:db8::/96" && n !== "198.51.100.0/24");
  assert.deepEqual(held.map((e) => e!.prefix).sort(), expected.map((n) => formatPrefix(prefix(n))).sort());
  assert.equal(held.find((e) => e!.prefix === "10.0.0.0/8")?.reason, "again");
  assert.ok(held.every((e) => e!.kind === "ban" && e!.node === "mx1" && e!.check === "pregreet"));
  assert.deepEqual([...index.entries("pass", 100)].map((e) => e.prefix), ["203.0.113.7/32"]);
  assert.equal([...index.entries("ban", 10)].length, expected.length + 1, "the /24 is in force before its expiry");
});

test("lookupAll reuses its answer: an entry kept from it stays as found after later lookups, changes and sweeps", () => {
  const index = new ListIndex();
  index.apply(change("ban", prefix("192.0.2.0/24"), { reason: "first" }));
  index.apply(change("ban", prefix("2001:db8:7::/48"), { reason: "second", expiresAt: 50 }));
  index.apply(change("allow", prefix("198.51.100.1")));
  const first = index.lookupAll(ip("192.0.2.1"), 0);
  assert.equal(first.allow, undefined);
  const kept = first.ban!.keep();
  const later = index.lookupAll(ip("2001:db8:7:1::1"), 0);
  assert.equal(later.ban?.prefix, "2001:db8:7::/48", "the answer read at once is the address's own");
  assert.equal(later.ban?.reason, "second");
  assert.equal(index.lookupAll(ip("198.51.100.1"), 0).allow?.prefix, "198.51.100.1/32");
  index.apply(change("ban", prefix("192.0.2.0/24"), { op: "remove", createdAt: 2 }));
  index.sweep(100, 10);
  assert.deepEqual(read(kept), {
    kind: "ban",
    prefix: "192.0.2.0/24",
    createdAt: 1,
    expiresAt: null,
    node: "mx1",
    check: "pregreet",
    reason: "first",
  });
  assert.equal(JSON.stringify(index.lookupAll(ip("198.51.100.1"), 0).allow), JSON.stringify(index.lookup("allow", ip("198.51.100.1"), 0)));
});
