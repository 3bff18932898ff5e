import { createHash, timingSafeEqual } from "node:crypto";
import { parseIP } from "../ip/address.ts";

export type AuthResult = "ok" | "missing" | "malformed" | "wrong" | "not-loopback";

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/**
 * The token a request presents: `Bearer TOKEN`, or HTTP Basic with TOKEN as the password (for
 * browsers); null for a header of either scheme that does not parse (RFC 6750 2.1, RFC 7617 2).
 */
function presented(header: string | null): string | null | undefined {
  if (!header) return undefined;
  const scheme = /^\S*/.exec(header)![0];
  if (/^Bearer$/i.test(scheme)) {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return bearer ? bearer[1] : null;
  }
  if (!/^Basic$/i.test(scheme)) return undefined;
  const basic = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
  if (!basic || basic[1].length % 4 !== 0) return null;
  let decoded: string;
  try {
    decoded = atob(basic[1]);
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  return colon < 0 ? null : decoded.slice(colon + 1);
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
  if (given === null) return "malformed";
  return timingSafeEqual(digest(given), digest(token)) ? "ok" : "wrong";
}
