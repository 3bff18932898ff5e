import assert from "node:assert/strict";
import { cachingDnsClient } from "../../src/dns/answer-cache.ts";
import type { DnsAnswer } from "../../src/dns/types.ts";
import { createDnsClient } from "../../src/dns/resolver.ts";
import { test } from "../harness.ts";
import { eventually } from "../helpers/eventually.ts";
import { startDnsmasq } from "../helpers/dnsmasq.ts";

test("a session runner's DNS answers are asked once and kept for their TTL (30 s without one); a failure is asked again", async () => {
  // Local answers with a TTL of 10 s (dnsmasq's default is 0: not to be kept at all).
  const dns = await startDnsmasq(["--local-ttl=10", "--host-record=client.cache.example,192.0.2.30", "--server=/dead.example/127.0.0.1#9"]);
  const [host, port] = dns.address.split(":");
  let clock = 1_000_000;
  const client = cachingDnsClient(createDnsClient({ host, port: Number(port) }, 300), () => clock);
  const asked = (what: string) => dns.log.join("").split("\n").filter((line) => line.includes(`query[${what} from`)).length;
  // dnsmasq logs a question as it answers it: the log may lag the answer a little.
  const counts = async (expected: number[], why: string) => {
    const now = () => [asked("A] client.cache.example"), asked("MX] nobody.cache.example")];
    await eventually(`${why}: questions seen ${expected}`, () => now().join() === expected.join(), 2_000).catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(now(), expected, `${why}:\n${dns.log.join("")}`);
  };

  const first = await Promise.all([client.query("client.cache.example", "A"), client.query("Client.Cache.Example", "A")]);
  assert.deepEqual(first.map((answer) => answer.status === "ok" && answer.records), [["192.0.2.30"], ["192.0.2.30"]]);
  assert.deepEqual(await client.query("nobody.cache.example", "MX"), { status: "nxdomain" });
  clock += 5_000;
  assert.equal((await client.query("client.cache.example", "A")).status, "ok");
  assert.deepEqual(await client.query("nobody.cache.example", "MX"), { status: "nxdomain" });
  await counts([1, 1], "each asked once, whatever the case of the name");
  // Past the address's TTL it is the resolver's to answer (Bun's keeps answers for their TTL itself).
  clock += 20_000;
  assert.deepEqual(await client.query("nobody.cache.example", "MX"), { status: "nxdomain" });
  await counts([1, 1], "an answer without a TTL of its own (MX, PTR, no such name) is kept 30 s");
  clock += 10_000;
  await client.query("nobody.cache.example", "MX");
  await counts([1, 2], "and then asked again");

  assert.equal((await client.query("host.dead.example", "A")).status, "error");
  const started = performance.now();
  assert.equal((await client.query("host.dead.example", "A")).status, "error");
  assert.ok(performance.now() - started >= 250, "a failure is not kept: the next question waits for its own answer");
});

test("the answer cache: an address is asked again once its TTL is over, and past 10,000 answers the oldest goes first", async () => {
  // The policy alone, over a counting resolver: with a real one, Bun's own cache answers within the TTL.
  const asked = new Map<string, number>();
  const inner = {
    query(name: string, type: string): Promise<DnsAnswer> {
      asked.set(`${type} ${name}`, (asked.get(`${type} ${name}`) ?? 0) + 1);
      return Promise.resolve(type === "A" ? { status: "ok", records: ["192.0.2.1"], ttl: 10 } : { status: "nxdomain" });
    },
  };
  let clock = 0;
  const client = cachingDnsClient(inner, () => clock);
  await client.query("ttl.example", "A");
  clock += 9_999;
  await client.query("ttl.example", "A");
  assert.equal(asked.get("A ttl.example"), 1, "within its TTL of 10 s");
  clock += 2;
  await client.query("ttl.example", "A");
  assert.equal(asked.get("A ttl.example"), 2, "past its TTL");

  for (let i = 0; i <= 10_000; i++) await client.query(`n${i}.example`, "MX");
  await client.query("n10000.example", "MX");
  await client.query("n1.example", "MX");
  assert.deepEqual([asked.get("MX n10000.example"), asked.get("MX n1.example")], [1, 1], "the newest 10,000 are kept");
  await client.query("n0.example", "MX");
  assert.equal(asked.get("MX n0.example"), 2, "the oldest was let go");
});
