import assert from "node:assert/strict";
import { createDnsClient } from "../../src/dns/resolver.ts";
import type { DnsblAnswer } from "../../src/dns/types.ts";
import { DnsblLookups } from "../../src/dnsbl/dnsbl-lookups.ts";
import { parseIP } from "../../src/ip/address.ts";
import { createLogger } from "../../src/log/logger.ts";
import { test } from "../harness.ts";
import { startDnsmasq } from "../helpers/dnsmasq.ts";

/** Polls the answers that have arrived until `count` are in, for at most two seconds. */
async function arrived(pending: { answers(): DnsblAnswer[] }, count: number): Promise<DnsblAnswer[]> {
  const deadline = Date.now() + 2000;
  while (pending.answers().length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return pending.answers();
}

function queriesFor(log: string[], name: string): number {
  return log.join("").split("\n").filter((line) => line.includes(`query[A] ${name} from`)).length;
}

test("DNSBL answers come from dnsmasq once and then from the cache; failures are asked again", async () => {
  const dns = await startDnsmasq(["--address=/2.2.0.192.zen.example/127.0.0.2", "--server=/dead.example/127.0.0.1#9"]);
  const [host, port] = dns.address.split(":");
  const lines: string[] = [];
  const lookups = new DnsblLookups(
    [{ zone: "zen.example", filter: undefined, weight: 1 }, { zone: "dead.example", filter: undefined, weight: 1 }],
    createDnsClient({ host, port: Number(port) }, 300),
    createLogger("text", "t", (line) => lines.push(line)),
  );
  const listed = parseIP("192.0.2.2")!;
  const first = await arrived(lookups.start(listed, Date.now()), 2);
  assert.deepEqual(first.find((a) => a.zone === "zen.example")?.answer.status, "ok");
  assert.deepEqual(first.find((a) => a.zone === "dead.example")?.answer, { status: "error", reason: "no answer within 300 ms" });
  const second = lookups.start(listed, Date.now());
  // The failure is not cached: it is asked again, so it is not among the answers at once.
  // (How many queries dnsmasq then sees is the runtime's resolver's business: Bun's merges a
  // repeat of a question still in flight.)
  assert.deepEqual(second.answers().map((a) => a.zone), ["zen.example"], "the listing is answered at once, from the cache");
  const again = await arrived(second, 2);
  assert.equal(again.find((a) => a.zone === "dead.example")?.answer.status, "error");
  assert.equal(queriesFor(dns.log, "2.2.0.192.zen.example"), 1, "dnsmasq was asked once");
  assert.ok(
    lines.some((line) => /DNSBL zone is unhealthy.*zone=dead\.example reason="lookup failed: no answer within 300 ms"/.test(line)),
    lines.join("\n"),
  );
});
