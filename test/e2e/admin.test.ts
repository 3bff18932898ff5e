import assert from "node:assert/strict";
import { adminApp } from "../../src/admin/app.ts";
import { Metrics } from "../../src/metrics/metrics.ts";
import { Store } from "../../src/store/store.ts";
import { join } from "node:path";
import { onCleanup, test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer, tempDir } from "../helpers/server.ts";

const E2E = { timeoutMs: 30_000 };
const TOKEN = "test-admin-token-0123456789abcdef";

async function call(base: string, path: string, init: RequestInit & { token?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  if (init.body) headers.set("content-type", "application/json");
  const response = await fetch(base + path, { ...init, headers });
  const text = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json: json as any, headers: response.headers };
}

test("healthz, readyz and Prometheus metrics over real HTTP, with the verdicts real SMTP traffic produced", async () => {
  const server = await startServer({ MXSCREEN_GREET_WAIT: "500ms" }, { admin: true });
  assert.equal((await call(server.admin, "/healthz")).text, "ok\n");
  const ready = await call(server.admin, "/readyz");
  assert.equal(ready.status, 200);
  assert.equal(ready.json.ready, true);
  const bot = await RawClient.open(server.port, "127.0.1.1");
  await bot.until(/^220-/);
  bot.write("EHLO bot\r\n");
  await bot.waitClosed();
  const polite = await RawClient.open(server.port, "127.0.1.2");
  await polite.until(/^220 /m);
  polite.write("QUIT\r\n");
  await polite.waitClosed();
  await server.waitForLine(/event="PASS NEW" client=127\.0\.1\.2/);
  let metrics = await call(server.admin, "/metrics");
  // The store's queue drains, and the reverse lookup begun with the session (which QUIT ends at once) answers, in their own time.
  const settled = (text: string) => /^mxscreen_store_queue_length 0$/m.test(text) && /type="PTR"\} [1-9]/.test(text);
  for (let i = 0; i < 40 && !settled(metrics.text); i++) {
    await new Promise((r) => setTimeout(r, 50));
    metrics = await call(server.admin, "/metrics");
  }
  assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  assert.match(metrics.text, /^mxscreen_connections_total\{verdict="pregreet"\} 1$/m);
  assert.match(metrics.text, /^mxscreen_connections_total\{verdict="pass-new"\} 1$/m);
  assert.match(metrics.text, /^mxscreen_check_hits_total\{action="ban",check="pregreet"\} 1$/m);
  assert.match(metrics.text, /^mxscreen_session_seconds_count 2$/m);
  assert.match(metrics.text, /^mxscreen_open_connections 0$/m);
  assert.match(metrics.text, /^mxscreen_store_queue_length 0$/m);
  assert.match(metrics.text, /^# TYPE mxscreen_dns_lookup_seconds histogram$/m);
  // The polite client's reverse DNS was looked up (against the test's own dnsmasq) as its session began.
  assert.match(metrics.text, /^mxscreen_dns_lookup_seconds_count\{status="[a-z]+",type="PTR"\} [1-9]\d*$/m);
  // Counters are there before anything happened, so rate() and alerts have a series to read.
  assert.match(metrics.text, /^mxscreen_connections_total\{verdict="banned"\} 0$/m);
  assert.match(metrics.text, /^mxscreen_check_hits_total\{action="enforce",check="non-smtp"\} 0$/m);
  assert.match(metrics.text, /^mxscreen_messages_total\{result="delivered"\} 0$/m);
  assert.match(metrics.text, /^mxscreen_build_info\{runtime="(deno|bun) [\d.]+",version="\d+\.\d+\.\d+"\} 1$/m);
  assert.match(metrics.text, /^mxscreen_list_entries\{list="ban"\} 1$/m, "the pregreet's ban");
  assert.match(metrics.text, /^mxscreen_list_entries\{list="pass"\} 1$/m, "the polite client's pass");
  assert.match(metrics.text, /^process_resident_memory_bytes [1-9]\d*$/m);
  assert.match(metrics.text, /^mxscreen_event_loop_lag_seconds [\d.e-]+$/m);
  const fds = Number(/^process_open_fds (\d+)$/m.exec(metrics.text)?.[1]);
  const maxFds = Number(/^process_max_fds (\d+)$/m.exec(metrics.text)?.[1]);
  assert.ok(fds >= 5 && fds < maxFds, `open fds ${fds} (listeners, the database, the admin socket) below the limit ${maxFds}`);
}, E2E);

test("bans and allow entries through the API: add, list, enforced on SMTP, explain, remove; bad input is 400", async () => {
  const server = await startServer({ MXSCREEN_GREET_WAIT: "300ms" }, { admin: true });
  const added = await call(server.admin, "/api/bans", {
    method: "POST",
    body: JSON.stringify({ address: "127.0.2.0/24", ttl: "2h", reason: "api test" }),
  });
  assert.equal(added.status, 201, added.text);
  assert.equal(added.json.ban.prefix, "127.0.2.0/24");
  assert.equal(Date.parse(added.json.ban.expiresAt) - Date.parse(added.json.ban.createdAt), 7_200_000);
  const list = await call(server.admin, "/api/bans");
  // One shape for an entry wherever it is shown: the answer to the addition, the list, explain.
  assert.deepEqual(list.json.bans, [added.json.ban]);
  assert.deepEqual(Object.keys(added.json.ban).sort(), ["check", "createdAt", "expiresAt", "kind", "node", "prefix", "reason"]);
  assert.match(added.json.ban.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual([added.json.ban.kind, added.json.ban.reason, added.json.ban.check], ["ban", "api test", "manual"]);
  const refused = await RawClient.open(server.port, "127.0.2.9");
  await refused.waitClosed();
  assert.match(refused.text, /^554 5\.7\.1 /);
  const why = await call(server.admin, "/api/explain/127.0.2.9");
  assert.match(why.json.standing, /^banned as 127\.0\.2\.0\/24 until .* \(manual: api test\)$/);
  assert.deepEqual(why.json.events.map((e: { event: string }) => e.event), ["BANNED"]);
  const { op, evidence: _evidence, ...explained } = why.json.lists[0];
  assert.equal(op, "set");
  assert.deepEqual(explained, added.json.ban, "explain shows the entry in the same shape");
  assert.match(why.json.events[0].at, /^\d{4}-\d\d-\d\dT.*Z$/);
  assert.equal((await call(server.admin, "/api/bans?address=127.0.2.0/24", { method: "DELETE" })).status, 200);
  assert.deepEqual((await call(server.admin, "/api/bans")).json.bans, []);
  const again = await call(server.admin, "/api/bans?address=127.0.2.0/24", { method: "DELETE" });
  assert.equal(again.status, 404, "nothing left to remove");
  assert.match(again.json.error, /^127\.0\.2\.0\/24 is not on the ban list: nothing was removed/);
  const greeted = await RawClient.open(server.port, "127.0.2.9");
  await greeted.until(/^220-/);

  for (
    const [body, error] of [
      [{ address: "300.1.1.1" }, /^address: "300\.1\.1\.1" is not an IP address or CIDR prefix$/],
      [{}, /^address: an IP address or CIDR prefix is required/],
      [{ address: "192.0.2.1", ttl: "forever" }, /^ttl: "forever" is not a duration/],
      [{ address: "192.0.2.1", reason: 5 }, /^reason: text of at most 500 characters$/],
    ] as const
  ) {
    const bad = await call(server.admin, "/api/bans", { method: "POST", body: JSON.stringify(body) });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, error);
  }
  const notJson = await fetch(`${server.admin}/api/allow`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{nope",
  });
  assert.equal(notJson.status, 400);
  assert.equal((await call(server.admin, "/api/explain/not-an-ip")).status, 400);

  const allowed = await call(server.admin, "/api/allow", { method: "POST", body: JSON.stringify({ address: "127.0.3.0/24" }) });
  assert.equal(allowed.status, 201);
  assert.equal(allowed.json.allow.expiresAt, null, "allow entries last until removed by default");
  await call(server.admin, "/api/bans", { method: "POST", body: JSON.stringify({ address: "127.0.3.4" }) });
  const allowWins = await RawClient.open(server.port, "127.0.3.4");
  await allowWins.until(/^220 /m, 2000);
  assert.doesNotMatch(allowWins.text, /^220-/, "allowed: no greet wait, and the ban does not apply");
  assert.equal(
    (await call(server.admin, "/api/allow", { method: "DELETE", body: JSON.stringify({ address: "127.0.3.0/24" }) })).status,
    200,
  );
  assert.deepEqual((await call(server.admin, "/api/allow")).json.allow, []);

  const stats = await call(server.admin, "/api/stats");
  assert.equal(stats.json.node, "node-a");
  assert.equal(stats.json.fleet.lists.ban, 1);
  assert.ok(stats.json.connections.banned >= 1);
}, E2E);

test("the OpenAPI document at /api/openapi.json names every route the app serves, with this version", async () => {
  const server = await startServer({}, { admin: true });
  const doc = await call(server.admin, "/api/openapi.json");
  assert.equal(doc.status, 200);
  assert.equal(doc.json.openapi, "3.1.0");
  assert.match(doc.json.info.version, /^\d+\.\d+\.\d+$/);
  const documented = Object.entries(doc.json.paths as Record<string, Record<string, unknown>>)
    .flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`)).sort();
  const dir = tempDir();
  const store = await Store.open({ url: `file:${join(dir, "o.db")}`, node: "n", queueFile: join(dir, "q.jsonl") }, () => {});
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
  });
  const served = [
    ...new Set(
      app.routes.filter((r) => r.method !== "ALL" && r.path.startsWith("/") && !["/", "/explain/:ip"].includes(r.path)).map((r) =>
        `${r.method} ${r.path}`
      ),
    ),
  ].sort();
  assert.deepEqual(documented, served, "every route documented, and nothing documented that is not served");
  const entry = doc.json.components.schemas.ListEntry;
  assert.deepEqual([...entry.required].sort(), ["check", "createdAt", "expiresAt", "kind", "node", "prefix", "reason"]);
}, E2E);

test("MXSCREEN_ADMIN_TOKEN: no token 401, wrong token 401, wrong length 401, right token 200; probes stay open", async () => {
  const server = await startServer({ MXSCREEN_ADMIN_TOKEN: TOKEN }, { admin: true });
  const none = await call(server.admin, "/api/bans");
  assert.equal(none.status, 401);
  assert.match(none.json.error, /send Authorization: Bearer/);
  assert.equal((await call(server.admin, "/api/bans", { token: TOKEN.replace(/.$/, "x") })).status, 401);
  assert.equal((await call(server.admin, "/api/bans", { token: "short" })).status, 401);
  assert.equal((await call(server.admin, "/api/bans", { token: TOKEN + TOKEN })).status, 401);
  assert.equal((await call(server.admin, "/api/bans", { token: TOKEN })).status, 200);
  const page = await call(server.admin, "/");
  assert.equal(page.status, 401);
  assert.match(page.headers.get("www-authenticate") ?? "", /^Basic realm="mxscreen"/);
  const basic = await fetch(`${server.admin}/`, { headers: { authorization: `Basic ${btoa(`me:${TOKEN}`)}` } });
  assert.equal(basic.status, 200);
  await basic.text();
  assert.equal((await call(server.admin, "/healthz")).status, 200);
  assert.equal((await call(server.admin, "/metrics")).status, 200);
}, E2E);

test("without a token the API answers a non-loopback peer 403 (the app as served, given that peer)", async () => {
  const store = await Store.open({ url: `file:${join(tempDir(), "a.db")}`, node: "n" }, () => {});
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
  });
  const remote = await app.fetch(new Request("http://mx/api/bans"), { address: "198.51.100.7" });
  assert.equal(remote.status, 403);
  assert.match((await remote.json()).error, /loopback clients only/);
  const page = await app.fetch(new Request("http://mx/"), { address: "2001:db8::5" });
  assert.equal(page.status, 403);
  const local = await app.fetch(new Request("http://mx/api/bans"), { address: "127.0.0.1" });
  assert.equal(local.status, 200);
});

test("readyz answers 503 with the reason while the SMTP listeners are not up (store outages: e2e/fleet)", async () => {
  const store = await Store.open({ url: `file:${join(tempDir(), "b.db")}`, node: "n" }, () => {});
  onCleanup(() => store.close(0));
  const app = adminApp({
    store,
    metrics: new Metrics(),
    token: undefined,
    allow: [],
    banTtlMs: 1000,
    passTtls: { greetMs: 86_400_000, protocolMs: 86_400_000 },
    listening: () => false,
    openConnections: () => 0,
  });
  const response = await app.fetch(new Request("http://mx/readyz"), { address: "127.0.0.1" });
  assert.equal(response.status, 503);
  assert.deepEqual((await response.json()).reasons, ["SMTP listeners are not up"]);
});
