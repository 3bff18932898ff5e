import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { adminApp } from "../../src/admin/app.ts";
import { Metrics } from "../../src/metrics/metrics.ts";
import { Store } from "../../src/store/store.ts";
import { onCleanup, test } from "../harness.ts";
import { ROOT, startServer, tempDir } from "../helpers/server.ts";

/** Debian's promtool, unpacked by test/run-all.mjs (the prometheus package's service must not start). */
const PROMTOOL = join(ROOT, "node_modules/.cache/mta/prometheus/usr/bin/promtool");
const ALERTS = join(ROOT, "deploy/prometheus/alerts.yml");
const DASHBOARD = join(ROOT, "deploy/grafana/mxscreen.json");

function promtool(args: string[], input?: string): string {
  assert.ok(existsSync(PROMTOOL), `${PROMTOOL} is missing: run node test/run-all.mjs once as root on Debian to unpack it`);
  const run = spawnSync(PROMTOOL, args, { cwd: ROOT, encoding: "utf8", input, timeout: 30_000 });
  assert.equal(run.status, 0, `promtool ${args.join(" ")} failed:\n${run.stdout}${run.stderr}`);
  return run.stdout + run.stderr;
}

/** The metric families an expression reads, histogram series reduced to their family. */
function metricNames(text: string): Set<string> {
  return new Set([...text.matchAll(/\b((?:mxscreen|process)_[a-z_]+)\b/g)].map((m) => m[1].replace(/_(bucket|sum|count)$/, "")));
}

test("alert rules pass promtool check rules, and promtool test rules fires each on its series and not before", () => {
  assert.match(promtool(["check", "rules", ALERTS]), /SUCCESS: 6 rules found/);
  assert.match(promtool(["test", "rules", "test/deploy/alerts.rules-test.yml"]), /SUCCESS/);
});

test("every metric the alerts and the Grafana dashboard read is one a real server exports, in valid exposition format", async () => {
  const server = await startServer({ MXSCREEN_DNSBL: "zen.example*3" }, { admin: true });
  const exported = await (await fetch(`${server.admin}/metrics`)).text();
  promtool(["check", "metrics"], exported);
  // MXSCREEN_MAX_CONNECTIONS reaches the admin app only when main.ts passes it: checked on the app itself.
  const dir = tempDir();
  const store = await Store.open({ url: `file:${join(dir, "m.db")}`, node: "n", queueFile: join(dir, "q.jsonl") }, () => {});
  onCleanup(() => store.close());
  const app = adminApp({
    store,
    metrics: new Metrics(),
    token: undefined,
    allow: [],
    banTtlMs: 1000,
    passTtls: { greetMs: 86_400_000, protocolMs: 86_400_000 },
    listening: () => true,
    openConnections: () => 0,
    maxConnections: 19_000,
  });
  const fromApp = await (await app.fetch(new Request("http://127.0.0.1/metrics"), { address: "127.0.0.1" })).text();
  assert.match(fromApp, /^mxscreen_max_connections 19000$/m);
  const available = new Set([...metricNames(exported), ...metricNames(fromApp)]);

  const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8"));
  const expressions = (dashboard.panels as { targets: { expr: string }[] }[]).flatMap((panel) => panel.targets.map((t) => t.expr));
  assert.ok(expressions.length >= 10, "the dashboard has its panels");
  for (
    const [source, text] of [["deploy/prometheus/alerts.yml", readFileSync(ALERTS, "utf8")], [
      "deploy/grafana/mxscreen.json",
      expressions.join("\n"),
    ]]
  ) {
    const unknown = [...metricNames(text)].filter((name) => !available.has(name));
    assert.deepEqual(unknown, [], `${source} reads metrics mxscreen does not export`);
  }
}, { timeoutMs: 30_000 });
