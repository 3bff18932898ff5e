import type { ReverseDns } from "../dns/types.ts";

/**
 * The MXSCREEN_ALLOW entry (`.lists.example`) that a client's forward-confirmed reverse name
 * falls under, if any. Only a confirmed name counts: anyone can put any name in their own PTR.
 */
export function allowedByName(reverse: ReverseDns, domains: readonly string[]): string | undefined {
  if (reverse.status !== "pass") return undefined;
  const name = reverse.name.toLowerCase().replace(/\.$/, "");
  const domain = domains.find((suffix) => name.endsWith(suffix));
  return domain === undefined ? undefined : `MXSCREEN_ALLOW ${domain} (${name})`;
}
