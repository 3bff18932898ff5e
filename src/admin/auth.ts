import { createHash, timingSafeEqual } from "node:crypto";
import { parseIP } from "../ip/address.ts";

export type AuthResult = "ok" | "missing" | "wrong" | "not-loopback";

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** The token a request presents: `Bearer TOKEN`, or HTTP Basic with TOKEN as the password (for browsers). */
function presented(header: string | null): string | undefined {
  if (!header) return undefined;
  const bearer = /^Bearer\s+(.+)$/i.exec(header);
  if (bearer) return bearer[1].trim();
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
  if (!basic) return undefined;
  const decoded = atob(basic[1]);
  return decoded.slice(decoded.indexOf(":") + 1);
}

export function isLoopback(address: string): boolean {
  const ip = parseIP(address);
  if (!ip) return false;
  return ip.family === 4 ? ip.value >>> 24 === 127 : ip.groups.slice(0, 7).every((g) => g === 0) && ip.groups[7] === 1;
}

/**
 * With a token configured, the request must present it: compared as SHA-256 digests in
 * constant time, so neither its content nor its length leaks through timing. Without one,
 * only loopback clients are served.
 */
export function authorize(token: string | undefined, authorization: string | null, peer: string): AuthResult {
  if (token === undefined) return isLoopback(peer) ? "ok" : "not-loopback";
  const given = presented(authorization);
  if (given === undefined) return "missing";
  return timingSafeEqual(digest(given), digest(token)) ? "ok" : "wrong";
}
