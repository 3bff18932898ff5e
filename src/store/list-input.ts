import { durationMs, MAX_DURATION_TEXT } from "../config/duration.ts";
import { formatPrefix, parsePrefix, type Prefix } from "../ip/address.ts";
import type { ListWrite } from "./store.ts";

/** What an operator asks for, from the CLI or the API, before it is checked. */
export interface ListRequest {
  readonly address?: unknown;
  readonly ttl?: unknown;
  readonly reason?: unknown;
  /** Confirms an entry wider than WIDEST_WITHOUT_FORCE. */
  readonly force?: unknown;
}

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

const MAX_REASON = 500;

/**
 * The shortest prefix an entry may have without confirmation: a /8 of IPv4, a /16 of IPv6.
 * Anything wider (`0.0.0.0/0`, `::/0`) bans or lets through a large part of the Internet,
 * usually by a typo.
 */
export const WIDEST_WITHOUT_FORCE = { 4: 8, 6: 16 } as const;

function tooWide(prefix: Prefix): boolean {
  return prefix.length < WIDEST_WITHOUT_FORCE[prefix.ip.family];
}

/**
 * Checks a ban or allow request: an address or CIDR prefix, an optional TTL (`1d`, `6h`;
 * `never` or absent = the default), an optional reason. The errors name the field;
 * `confirm` says how this caller confirms a wide prefix (`--force`, `"force": true`).
 */
export function checkListRequest(request: ListRequest, defaultTtlMs: number | null, confirm: string): Checked<ListWrite> {
  if (typeof request.address !== "string" || request.address.trim() === "") {
    return { ok: false, error: "address: an IP address or CIDR prefix is required, e.g. 192.0.2.7 or 2001:db8::/48" };
  }
  const prefix = parsePrefix(request.address.trim());
  if (!prefix) return { ok: false, error: `address: ${JSON.stringify(request.address)} is not an IP address or CIDR prefix` };
  if (tooWide(prefix) && request.force !== true) {
    const limit = WIDEST_WITHOUT_FORCE[prefix.ip.family];
    return {
      ok: false,
      error: `address: ${
        formatPrefix(prefix)
      } is wider than a /${limit} and covers a large part of the Internet; if you mean it, confirm with ${confirm}`,
    };
  }
  let ttlMs = defaultTtlMs;
  if (request.ttl !== undefined && request.ttl !== null && request.ttl !== "") {
    if (request.ttl === "never") ttlMs = null;
    else {
      const ms = durationMs(String(request.ttl));
      if (ms === "malformed") {
        return { ok: false, error: `ttl: ${JSON.stringify(request.ttl)} is not a duration such as 30m, 6h, 1d, or never` };
      }
      if (ms === "too-long") {
        return {
          ok: false,
          error: `ttl: ${JSON.stringify(request.ttl)} is longer than ${MAX_DURATION_TEXT}, the longest allowed; use never for no end`,
        };
      }
      if (ms === 0) return { ok: false, error: "ttl: must be above 0" };
      ttlMs = ms;
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
