import type { Check, Stage } from "./types.ts";

/** A check with its id kept as a literal type, so the registry can name every id (CheckId) and every knob (ChecksSettings). */
export function defineCheck<const Id extends string, S, St extends Stage>(check: Check<Id, S, St>): Check<Id, S, St> {
  return check;
}
