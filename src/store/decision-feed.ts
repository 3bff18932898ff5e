import type { ListFileLine } from "./list-file.ts";

/** Go's time.Duration text (`3h59m58.5s`, `720h`), as CrowdSec writes a decision's duration. */
const GO_DURATION = /^(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|µs|ns))+$/;
const GO_UNITS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, "µs": 1e-3, ns: 1e-6 };

/** A Go duration in whole milliseconds (at least 1), or why not. */
function goDurationMs(text: string): number | string {
  if (text.startsWith("-")) return "is negative: the decision has expired";
  if (!GO_DURATION.test(text)) return "is not a duration such as 4h or 3h59m58s";
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) ms += Number(amount) * GO_UNITS[unit];
  return Math.max(1, Math.round(ms));
}

/** Scopes of CrowdSec decisions that name addresses; `Country`, `AS` and others do not. */
const ADDRESS_SCOPES = new Set(["ip", "range"]);

/**
 * What a decision feed pushes, read as lines to import: our own `{"entries": [...]}` (each
 * `address`, optional `ttl` and `reason`), a bare array of such entries or of CrowdSec
 * decisions (`value`, `scope` Ip or Range, `type` ban, `duration` in Go's form, `scenario` as the
 * reason), or CrowdSec's stream (`{"new": [...], "deleted": [...]}`), whose deleted decisions are
 * removals. Item numbers from 1 stand in for line numbers.
 */
export function readDecisions(
  body: unknown,
): { readonly add: ListFileLine[]; readonly remove: ListFileLine[] } | { readonly error: string } {
  const object = typeof body === "object" && body !== null && !Array.isArray(body) ? body as Record<string, unknown> : undefined;
  const added = Array.isArray(body) ? body : object?.entries ?? object?.new ?? (object && "deleted" in object ? [] : undefined);
  const deleted = object?.deleted ?? [];
  if (!Array.isArray(added) || !Array.isArray(deleted)) {
    return {
      error:
        'body: expected {"entries": [{"address": ...}]}, an array of entries or CrowdSec decisions, or a CrowdSec stream {"new": [...], "deleted": [...]}',
    };
  }
  return { add: added.map((item, i) => readItem(item, i + 1)), remove: deleted.map((item, i) => readItem(item, added.length + i + 1)) };
}

function readItem(item: unknown, line: number): ListFileLine {
  const text = JSON.stringify(item)?.slice(0, 120) ?? "";
  const refuse = (error: string): ListFileLine => ({ type: "refused", line, text, error });
  if (typeof item !== "object" || item === null || Array.isArray(item)) return refuse("not an object");
  const fields = item as Record<string, unknown>;
  const address = fields.address ?? fields.value;
  if (typeof address !== "string") return refuse("address (or a decision's value): an IP address or CIDR prefix is required");
  if (fields.scope !== undefined && !ADDRESS_SCOPES.has(String(fields.scope).toLowerCase())) {
    return refuse(`scope ${JSON.stringify(fields.scope)} names no address: only Ip and Range decisions can be imported`);
  }
  if (fields.type !== undefined && String(fields.type).toLowerCase() !== "ban") {
    return refuse(`type ${JSON.stringify(fields.type)}: only ban decisions can be imported (mxscreen has no captcha)`);
  }
  let ttl: string | undefined;
  if (fields.ttl !== undefined) ttl = String(fields.ttl);
  else if (fields.duration !== undefined) {
    const ms = goDurationMs(String(fields.duration));
    if (typeof ms === "string") return refuse(`duration ${JSON.stringify(fields.duration)} ${ms}`);
    ttl = `${ms}ms`;
  }
  const reason = fields.reason ?? fields.scenario;
  return { type: "entry", line, address: address.trim(), list: undefined, reason: typeof reason === "string" ? reason : undefined, ttl };
}
