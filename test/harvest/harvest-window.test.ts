import assert from "node:assert/strict";
import type { HarvestChange } from "../../src/harvest/index.ts";
import { HarvestWindow, reportHarvest } from "../../src/harvest/index.ts";
import { createLogger } from "../../src/log/logger.ts";
import { Metrics } from "../../src/metrics/metrics.ts";
import { parseIP } from "../../src/ip/address.ts";
import { WindowedCounts } from "../../src/store/windowed-counts.ts";
import { test } from "../harness.ts";

const WINDOW_MS = 60_000;

function harvestWindow(domains: string[] = ["example.org"]) {
  const changes: HarvestChange[] = [];
  return { ...harvestWindowReporting((change) => changes.push(change), domains), changes };
}

function harvestWindowReporting(onChange: (change: HarvestChange) => void, domains: string[] = ["example.org"]) {
  const counters = { perDomain: new WindowedCounts(WINDOW_MS), perClient: new WindowedCounts(WINDOW_MS) };
  const window = new HarvestWindow({ threshold: 6, prefixClients: 3, domains }, counters, onChange);
  /** A session of this node from `address` ended with `n` unknown recipients at `domain` (BadRecipientWindow adds the domain's). */
  const ended = (address: string, n: number, now: number, domain = "example.org") => {
    counters.perDomain.add(domain, n, now);
    return window.sessionEnded(parseIP(address)!, n, [[domain, n]], now);
  };
  return { window, counters, ended };
}

test("a domain enters the harvest state when the fleet's count reaches the threshold, here or by another node's rows, and leaves as it ages out", () => {
  const { window, counters, changes, ended } = harvestWindow();
  assert.equal(ended("192.0.2.1", 4, 0), undefined, "4 of 6: no harvest yet");
  assert.deepEqual(window.snapshot(), []);
  counters.perDomain.setOther("example.org", 0, "node-b", 3, 1_000);
  window.heardDomain("example.org", 1_000);
  assert.deepEqual(changes, [{ state: "enter", domain: "example.org", count: 7, since: 1_000 }]);
  assert.deepEqual(window.snapshot(), [["example.org", 7]]);
  window.heardDomain("example.org", 2_000);
  assert.equal(changes.length, 1, "entered once");
  window.tick(30_000);
  assert.equal(window.harvested, 1, "still within the window");
  window.tick(WINDOW_MS + 10_000);
  assert.deepEqual(changes.at(-1), { state: "leave", domain: "example.org", count: 0, since: 1_000 });
  assert.deepEqual(window.snapshot(), []);
});

test("a domain that is not ours (MXSCREEN_ACCEPT_DOMAINS) is never under harvest; with no list, any domain can be", () => {
  const ours = harvestWindow();
  ours.ended("192.0.2.1", 50, 0, "elsewhere.example");
  assert.deepEqual(ours.changes, []);
  const any = harvestWindow([]);
  any.ended("192.0.2.1", 6, 0, "elsewhere.example");
  assert.deepEqual(any.changes.map((c) => [c.state, c.domain]), [["enter", "elsewhere.example"]]);
});

test("while a domain is under harvest, a network is over once enough distinct addresses of it tried unknown recipients, fleet-wide, each counted once", () => {
  const { window, counters, ended } = harvestWindow();
  assert.equal(ended("192.0.2.1", 3, 0), undefined, "before the harvest: counted, no finding");
  counters.perClient.setOther("192.0.2.2", 0, "node-b", 2, 500);
  window.heardClient("192.0.2.2");
  counters.perClient.setOther("192.0.2.1", 0, "node-b", 1, 500);
  window.heardClient("192.0.2.1");
  const second = ended("192.0.2.1", 3, 1_000);
  assert.deepEqual(second && { ...second, network: undefined }, {
    domain: "example.org",
    count: 6,
    network: undefined,
    clients: 2,
    over: false,
  }, "192.0.2.1 at two nodes is one address");
  const third = ended("192.0.2.3", 1, 2_000);
  assert.deepEqual([third?.clients, third?.over], [3, true]);
  const elsewhere = ended("198.51.100.7", 1, 2_000);
  assert.deepEqual([elsewhere?.clients, elsewhere?.over], [1, false], "another network counts apart");
  const v6 = ended("2001:db8::1", 1, 2_000);
  assert.deepEqual([v6?.clients, v6?.network.length], [1, 64]);
  assert.equal(ended("192.0.2.9", 1, WINDOW_MS + 20_000)?.clients, 1, "the others aged out of the window");
});

test("entering and leaving the harvest state is one log line each and counted by state", () => {
  const lines: string[] = [];
  const metrics = new Metrics();
  const report = reportHarvest(createLogger("text", "mx1", (line) => lines.push(line)), metrics, 6);
  const { window, ended } = harvestWindowReporting(report);
  ended("192.0.2.1", 6, 0);
  window.tick(WINDOW_MS + 10_000);
  assert.match(
    lines[0],
    /node=mx1 level=warn msg="recipient domain under harvest across the fleet: clients not yet passed are greylisted for it" domain=example\.org bad_recipients=6 threshold=6$/,
  );
  assert.match(
    lines[1],
    /node=mx1 level=info msg="harvest over: recipient domain no longer greylisted for new clients" domain=example\.org bad_recipients=0 duration_ms=\d+$/,
  );
  const rendered = metrics.render();
  assert.match(rendered, /^mxscreen_harvest_changes_total\{state="enter"\} 1$/m);
  assert.match(rendered, /^mxscreen_harvest_changes_total\{state="leave"\} 1$/m);
});
