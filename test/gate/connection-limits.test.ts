import assert from "node:assert/strict";
import { ConnectionLimits } from "../../src/gate/connection-limits.ts";
import { parseIP } from "../../src/ip/address.ts";
import { test } from "../harness.ts";

const ip = (text: string) => parseIP(text)!;

test("connection limits: per client address, per /24 and /64, and in total; a released slot is free again", () => {
  const limits = new ConnectionLimits({ perClient: 2, perPrefix: 3, total: 5 });
  assert.equal(limits.admit(ip("192.0.2.1")), undefined);
  assert.equal(limits.admit(ip("192.0.2.1")), undefined);
  assert.deepEqual(limits.admit(ip("192.0.2.1")), { limit: "client", key: "192.0.2.1", count: 3 });
  assert.equal(limits.admit(ip("192.0.2.2")), undefined);
  assert.deepEqual(limits.admit(ip("192.0.2.3")), { limit: "prefix", key: "192.0.2.0/24", count: 4 });
  assert.equal(limits.admit(ip("2001:db8::1")), undefined);
  assert.deepEqual(limits.admit(ip("2001:db8::2")), undefined);
  assert.deepEqual(limits.admit(ip("198.51.100.1")), { limit: "total", key: "all", count: 6 });
  assert.equal(limits.open, 5);
  limits.release(ip("192.0.2.1"));
  assert.equal(limits.admit(ip("192.0.2.3")), undefined, "the /24 has room again");
  assert.deepEqual(limits.admit(ip("2001:db8::3")), { limit: "total", key: "all", count: 6 });
});

test("connection limits: IPv6 addresses of one /64 share its prefix count", () => {
  const limits = new ConnectionLimits({ perClient: 10, perPrefix: 2, total: 100 });
  limits.admit(ip("2001:db8:0:1::1"));
  limits.admit(ip("2001:db8:0:1::2"));
  assert.deepEqual(limits.admit(ip("2001:db8:0:1:ffff::9")), { limit: "prefix", key: "2001:db8:0:1::/64", count: 3 });
  assert.equal(limits.admit(ip("2001:db8:0:2::1")), undefined, "another /64");
});
