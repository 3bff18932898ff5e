import type { RateCounts } from "./types.ts";

/**
 * Which limit a count breaks, if any: the client's own before its network's; a limit of 0 is
 * off. `adding`: the command or connection at hand, counted with the rest.
 */
export function rateBreach(
  counts: RateCounts,
  adding: number,
  maxClient: number,
  maxPrefix: number,
): { readonly limit: "client" | "prefix"; readonly count: number } | undefined {
  const client = counts.client + adding;
  const prefix = counts.prefix + adding;
  if (maxClient > 0 && client > maxClient) return { limit: "client", count: client };
  if (maxPrefix > 0 && prefix > maxPrefix) return { limit: "prefix", count: prefix };
  return undefined;
}
