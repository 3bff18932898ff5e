import { Hono } from "hono";
import type { Context } from "hono";
import { type PassTtls, standing } from "../store/standing.ts";
import { formatIP, formatPrefix, parseIP, parsePrefix, type Prefix } from "../ip/address.ts";
import { explain } from "../store/explain.ts";
import { checkAddress, checkListRequest } from "../store/list-input.ts";
import { fleetStats } from "../store/stats.ts";
import type { ObserveSettings } from "../store/observed-checks.ts";
import type { Store, StoreHealth } from "../store/store.ts";
import type { ListKind } from "../store/types.ts";
import { authorize } from "./auth.ts";
import { importRoute } from "./list-import-route.ts";
import { renderDashboard, renderExplain } from "./dashboard.ts";
import { entryJson, explanationJson, rowJson } from "./list-entry.ts";
import OPENAPI from "./openapi.json" with { type: "json" };
import { VERSION } from "../version.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { registerProcessMetrics } from "./process-metrics.ts";
import { explainFromMemory, fleetFromMemory, fromStoreOrMemory, STALE_HEADER, type Staleness } from "./stale.ts";

export interface AdminDeps {
  readonly store: Store;
  readonly metrics: Metrics;
  readonly token: string | undefined;
  readonly allow: readonly Prefix[];
  readonly banTtlMs: number;
  readonly passTtls: PassTtls;
  /** Listeners up and accepting. */
  readonly listening: () => boolean;
  readonly openConnections: () => number;
  /** MXSCREEN_MAX_CONNECTIONS, shown as mxscreen_max_connections. */
  readonly maxConnections?: number;
  /** The estimate of what enforcing the checks in `ignore` or `observe` would cost; without it stats leave it out. */
  readonly observe?: ObserveSettings;
}

type Env = { Bindings: { address: string } };

const WRITE_WAIT_MS = 5_000;
/** Following answers every MXSCREEN_FOLLOW_INTERVAL; this long without any answer is an outage however it looks. */
const CONTACT_WITHIN_MS = 30_000;

function describe(s: ReturnType<typeof standing>, ttls: PassTtls): string {
  switch (s.kind) {
    case "allowed":
      return `allowed (${s.source})`;
    case "banned":
      return `banned as ${s.entry.prefix} until ${
        s.entry.expiresAt === null ? "removed" : new Date(s.entry.expiresAt).toISOString()
      } by ${s.entry.node} (${s.entry.check ?? "manual"}${s.entry.reason ? `: ${s.entry.reason}` : ""})`;
    case "passed":
      return `passed as ${s.entry.prefix} until ${new Date(s.entry.createdAt + ttls.greetMs).toISOString()}`;
    case "new":
      return s.protocolPass
        ? `gets the greet wait again; its protocol tests passed as ${s.protocolPass.prefix} until ${
          new Date(s.protocolPass.createdAt + ttls.protocolMs).toISOString()
        }`
        : "not on any list: gets the greet wait";
  }
}

/** Why a node screens with less than the fleet's current lists, or cannot share what it learns. */
function degradedReasons(health: StoreHealth, now: number): string[] {
  const reasons: string[] = [];
  if (!health.reachable) reasons.push(`store unreachable: ${health.lastError ?? "no contact"}`);
  if (health.listsFrom === "local-copy") {
    reasons.push("screening with the local copy of the lists: the database has not answered since start");
  }
  if (health.listsFrom === "replica-file") {
    reasons.push("screening with the embedded replica's own file: the primary has not answered since start");
  }
  if (health.listsFrom === "nothing") reasons.push("no lists to screen with: no local copy, and the database has not answered since start");
  if (health.listsFrom === "database" && now - health.lastContact > CONTACT_WITHIN_MS) {
    reasons.push(`no contact with the store for ${Math.round((now - health.lastContact) / 1000)} s`);
  }
  return reasons;
}

function markStale(c: Context<Env>, stale: Staleness | undefined): void {
  if (stale) c.header(STALE_HEADER, "true");
}

/** Waits for a write to reach the database while it answers; while it is away the write is queued and the answer is at once. */
function writtenSoon(store: Store): Promise<boolean> {
  return store.health().reachable ? store.flush(WRITE_WAIT_MS) : Promise.resolve(false);
}

/** The admin HTTP API and dashboard (README: The operator's side), as a Hono app over the injected store and metrics. */
export function adminApp(deps: AdminDeps): Hono<Env> {
  const app = new Hono<Env>();
  const { store, metrics } = deps;
  registerProcessMetrics(metrics, store, deps.maxConnections);

  app.get("/healthz", (c) => c.text("ok\n"));

  // Degraded is still ready: a node whose database is away screens from memory and queues its
  // writes, and taking every node of a fleet out of a balancer because their shared database is
  // away would stop all mail. `?strict` answers 503 for it, for balancers that have a healthier node.
  app.get("/readyz", (c) => {
    const down = deps.listening() ? [] : ["SMTP listeners are not up"];
    const health = store.health();
    const degraded = degradedReasons(health, Date.now());
    const status = down.length > 0 ? "down" : degraded.length > 0 ? "degraded" : "ready";
    const ok = status === "ready" || (status === "degraded" && c.req.query("strict") === undefined);
    return c.json({ ready: ok, status, reasons: [...down, ...degraded], store: health }, ok ? 200 : 503);
  });

  app.get("/metrics", (c) => c.body(metrics.render(), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }));

  const guard = (c: Context<Env>, browser: boolean) => {
    const result = authorize(deps.token, c.req.header("authorization") ?? null, c.env.address);
    if (result === "ok") return undefined;
    if (result === "not-loopback") {
      return c.json({ error: "forbidden: without MXSCREEN_ADMIN_TOKEN the admin API answers loopback clients only" }, 403);
    }
    const headers: Record<string, string> = browser
      ? { "www-authenticate": 'Basic realm="mxscreen", charset="UTF-8"' }
      : { "www-authenticate": "Bearer" };
    const error = {
      missing: "unauthorized: send Authorization: Bearer <MXSCREEN_ADMIN_TOKEN>",
      malformed:
        "unauthorized: the Authorization header is malformed: send Bearer <MXSCREEN_ADMIN_TOKEN>, or Basic with base64 of user:<MXSCREEN_ADMIN_TOKEN>",
      wrong: "unauthorized: wrong token",
    }[result];
    return c.json({ error }, 401, headers);
  };
  app.use("/api/*", async (c, next) => guard(c, false) ?? await next());
  app.use("/", async (c, next) => guard(c, true) ?? await next());
  app.use("/explain/*", async (c, next) => guard(c, true) ?? await next());

  const body = async (c: Context<Env>): Promise<Record<string, unknown>> => {
    if (!(c.req.header("content-type") ?? "").includes("application/json")) return {};
    try {
      const value = await c.req.json();
      return typeof value === "object" && value !== null ? value : {};
    } catch {
      return { __invalid: true };
    }
  };

  for (const kind of ["ban", "allow"] as const satisfies ListKind[]) {
    const path = kind === "ban" ? "/api/bans" : "/api/allow";
    const entries = () => {
      const now = Date.now();
      return fromStoreOrMemory(
        store,
        async () => (await store.list(kind, now)).map(rowJson),
        () => store.entries(kind, now).map(entryJson),
      );
    };
    app.get(path, async (c) => {
      const { value, stale } = await entries();
      markStale(c, stale);
      return c.json({ [kind === "ban" ? "bans" : "allow"]: value, ...(stale && { stale }) });
    });
    app.post(path, async (c) => {
      const input = await body(c);
      if (input.__invalid) return c.json({ error: "body: not valid JSON" }, 400);
      const checked = checkListRequest(input, kind === "ban" ? deps.banTtlMs : null, '"force": true in the body');
      if (!checked.ok) return c.json({ error: checked.error }, 400);
      const entry = store.set(kind, checked.value, Date.now());
      const written = await writtenSoon(store);
      return c.json({ [kind]: entryJson(entry), written }, written ? 201 : 202);
    });
    importRoute(app, store, kind, path, deps.banTtlMs);
    app.delete(path, async (c) => {
      const input = await body(c);
      const checked = checkAddress(c.req.query("address") ?? input.address);
      if (!checked.ok) return c.json({ error: checked.error }, 400);
      const prefix = parsePrefix(checked.value)!;
      const { value, stale } = await entries();
      markStale(c, stale);
      if (!value.some((entry) => entry.prefix === formatPrefix(prefix))) {
        return c.json({
          error: `${formatPrefix(prefix)} is not on the ${kind} list: nothing was removed (see GET ${path})`,
          ...(stale && { stale }),
        }, 404);
      }
      store.remove(kind, prefix, Date.now(), "removed through the admin API");
      const written = await writtenSoon(store);
      return c.json({ removed: checked.value, written }, written ? 200 : 202);
    });
  }

  // Another node wrote a ban or allow change: read the database now (the change itself comes from there).
  app.post("/api/nudge", (c) => {
    store.wake();
    return c.body(null, 204);
  });

  app.get("/api/openapi.json", (c) => c.json({ ...OPENAPI, info: { ...OPENAPI.info, version: VERSION } }));

  const fleet = (now: number) => fromStoreOrMemory(store, () => fleetStats(store.db, now, deps.observe), () => fleetFromMemory(store, now));
  app.get("/api/stats", async (c) => {
    const now = Date.now();
    const { value, stale } = await fleet(now);
    markStale(c, stale);
    const totals = metrics.verdictTotals();
    return c.json({
      node: store.node,
      now,
      open: deps.openConnections(),
      connections: totals.verdicts,
      connectionsLetThrough: totals.letThrough,
      store: store.health(),
      fleet: value,
      ...(stale && { stale }),
    });
  });

  const explainOf = async (text: string) => {
    const ip = parseIP(text);
    if (!ip) return undefined;
    const now = Date.now();
    const { value, stale } = await fromStoreOrMemory(store, () => explain(store.db, ip), () => explainFromMemory(store, ip, now));
    return {
      now,
      standing: describe(standing(deps.allow, store, ip, now, deps.passTtls), deps.passTtls),
      explanation: { ...value, ip: formatIP(ip) },
      stale,
    };
  };
  app.get("/api/explain/:ip", async (c) => {
    const result = await explainOf(c.req.param("ip"));
    if (!result) return c.json({ error: `ip: ${JSON.stringify(c.req.param("ip"))} is not an IP address` }, 400);
    markStale(c, result.stale);
    return c.json({
      now: new Date(result.now).toISOString(),
      standing: result.standing,
      ...explanationJson(result.explanation),
      ...(result.stale && { stale: result.stale }),
    });
  });
  app.get("/explain/:ip", async (c) => {
    const result = await explainOf(c.req.param("ip"));
    if (!result) return c.text("not an IP address\n", 400);
    markStale(c, result.stale);
    return c.html(renderExplain(result.explanation, result.now, result.standing, result.stale));
  });

  app.get("/", async (c) => {
    const now = Date.now();
    const { value, stale } = await fleet(now);
    markStale(c, stale);
    return c.html(renderDashboard({
      node: store.node,
      now,
      open: deps.openConnections(),
      totals: metrics.verdictTotals(),
      lastHour: metrics.lastHour(now),
      fleet: value,
      stale,
      store: store.health(),
    }));
  });

  app.onError((error, c) => c.json({ error: `internal error: ${error.message}` }, 500));
  return app;
}
