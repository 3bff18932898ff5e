import assert from "node:assert/strict";
import { cachingDnsClient } from "../../src/dns/answer-cache.ts";
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
