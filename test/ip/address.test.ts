import assert from "node:assert/strict";
import { clientPrefix, contains, formatIP, formatPrefix, parseIP, parsePrefix } from "../../src/ip/address.ts";
import { test } from "../harness.ts";

test("IPv4 and IPv6 addresses parse and format canonically", () => {
  assert.equal(formatIP(parseIP("192.0.2.1")!), "192.0.2.1");
  assert.equal(formatIP(parseIP("2001:DB8:0:0:0:0:0:1")!), "2001:db8::1");
  assert.equal(formatIP(parseIP("::")!), "::");
  assert.equal(formatIP(parseIP("2001:db8::1:0:0:1")!), "2001:db8::1:0:0:1");
  assert.equal(formatIP(parseIP("fe80::1%eth0")!), "fe80::1");
  assert.equal(formatIP(parseIP("64:ff9b::192.0.2.33")!), "64:ff9b::c000:221");
});

test("IPv4-mapped IPv6, as dual-stack sockets report clients, becomes IPv4", () => {
  assert.deepEqual(parseIP("::ffff:192.0.2.7"), { family: 4, value: 0xc0000207 });
});

test("malformed addresses are refused", () => {
  for (const bad of ["256.1.1.1", "1.2.3", "01.2.3.4", "1:2:3:4:5:6:7:8:9", "2001:db8:::1", "2001:db8::g", "", "example.org"]) {
    assert.equal(parseIP(bad), null, bad);
  }
});

test("prefixes are masked; IPv6 clients aggregate per /64 by default", () => {
  assert.equal(formatPrefix(parsePrefix("192.0.2.77/24")!), "192.0.2.0/24");
  assert.equal(formatPrefix(clientPrefix(parseIP("2001:db8:1:2:aaaa::5")!)), "2001:db8:1:2::/64");
  assert.equal(formatPrefix(clientPrefix(parseIP("192.0.2.5")!)), "192.0.2.5/32");
  assert.ok(contains(parsePrefix("2001:db8:1:2::/64")!, parseIP("2001:db8:1:2:ffff::1")!));
  assert.ok(!contains(parsePrefix("2001:db8:1:2::/64")!, parseIP("2001:db8:1:3::1")!));
  assert.ok(!contains(parsePrefix("192.0.2.0/24")!, parseIP("2001:db8::1")!));
  assert.equal(parsePrefix("192.0.2.0/33"), null);
});
