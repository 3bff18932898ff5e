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
