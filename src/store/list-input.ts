import { parseDuration } from "../config/values.ts";
import { formatPrefix, parsePrefix } from "../ip/address.ts";
import type { ListWrite } from "./store.ts";

/** What an operator asks for, from the CLI or the API, before it is checked. */
export interface ListRequest {
  readonly address?: unknown;
  readonly ttl?: unknown;
  readonly reason?: unknown;
}

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

const MAX_REASON = 500;

/**
 * Checks a ban or allow request: an address or CIDR prefix, an optional TTL (`1d`, `6h`;
 * `never` or absent = the default), an optional reason. The errors name the field.
 */
export function checkListRequest(request: ListRequest, defaultTtlMs: number | null): Checked<ListWrite> {
  if (typeof request.address !== "string" || request.address.trim() === "") {
    return { ok: false, error: "address: an IP address or CIDR prefix is required, e.g. 192.0.2.7 or 2001:db8::/48" };
  }
  const prefix = parsePrefix(request.address.trim());
  if (!prefix) return { ok: false, error: `address: ${JSON.stringify(request.address)} is not an IP address or CIDR prefix` };
  let ttlMs = defaultTtlMs;
  if (request.ttl !== undefined && request.ttl !== null && request.ttl !== "") {
    if (request.ttl === "never") ttlMs = null;
    else {
      try {
        ttlMs = parseDuration("ttl", String(request.ttl));
      } catch {
        return { ok: false, error: `ttl: ${JSON.stringify(request.ttl)} is not a duration such as 30m, 6h, 1d, or never` };
      }
      if (ttlMs === 0) return { ok: false, error: "ttl: must be above 0" };
    }
  }
  if (request.reason !== undefined && (typeof request.reason !== "string" || request.reason.length > MAX_REASON)) {
    return { ok: false, error: `reason: text of at most ${MAX_REASON} characters` };
  }
  return { ok: true, value: { prefix, ttlMs, check: "manual", reason: (request.reason as string | undefined) ?? undefined } };
}

export function checkAddress(address: unknown): Checked<string> {
  const prefix = typeof address === "string" ? parsePrefix(address.trim()) : null;
  if (!prefix) return { ok: false, error: `address: ${JSON.stringify(address ?? "")} is not an IP address or CIDR prefix` };
  return { ok: true, value: formatPrefix(prefix) };
}
