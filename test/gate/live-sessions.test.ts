import assert from "node:assert/strict";
import { LiveSessions } from "../../src/gate/live-sessions.ts";
import { type IP, parseIP, parsePrefix } from "../../src/ip/address.ts";
import { test } from "../harness.ts";

const connection = (address: string) => ({ record: { ip: parseIP(address) as IP }, address });

test("a ban of one address or an IPv6 /64 finds that client's open connections at once; one of another client's finds none", () => {
  const covered: string[] = [];
  const live = new LiveSessions<ReturnType<typeof connection>>((c) => covered.push(c.address));
  const [a1, a2, b, v6] = [connection("192.0.2.1"), connection("192.0.2.1"), connection("192.0.2.2"), connection("2001:db8::5")];
  for (const c of [a1, a2, b, v6]) live.add(c);
  live.banned(parsePrefix("192.0.2.1")!);
  assert.deepEqual(covered, ["192.0.2.1", "192.0.2.1"]);
  live.banned(parsePrefix("2001:db8::/64")!);
  live.banned(parsePrefix("2001:db8::9/128")!);
  assert.deepEqual(covered.slice(2), ["2001:db8::5"], "the /64 covers it, another host of the /64 does not");
  live.delete(b);
  live.banned(parsePrefix("192.0.2.2")!);
  assert.equal(covered.length, 3, "a connection that ended is not ended again");
});

test("wider bans of one turn are answered by one scan on the next; past 64 of them every connection is handed over to be looked up", async () => {
  const covered: string[] = [];
  const live = new LiveSessions<ReturnType<typeof connection>>((c) => covered.push(c.address));
  for (const address of ["192.0.2.1", "192.0.2.200", "198.51.100.1"]) live.add(connection(address));
  live.banned(parsePrefix("192.0.2.0/25")!);
  live.banned(parsePrefix("203.0.113.0/24")!);
  assert.deepEqual(covered, [], "not at once: a burst is answered together");
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(covered, ["192.0.2.1"]);
  covered.length = 0;
  for (let i = 0; i < 100; i++) live.banned(parsePrefix(`10.${i}.0.0/16`)!);
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(covered.sort(), ["192.0.2.1", "192.0.2.200", "198.51.100.1"], "the caller decides by the lists in force");
});
