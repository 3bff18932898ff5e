import { ConfigError } from "./config-error.ts";

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** No setting or list entry needs longer, and every time it is added to stays a valid Date. */
export const MAX_DURATION_MS = 36_500 * DURATION_UNITS.d;
export const MAX_DURATION_TEXT = "36500d (100 years)";

/** `300ms`, `6s`, `10m`, `2h`, `1d` → milliseconds; what is wrong with any other text. */
export function durationMs(text: string): number | "malformed" | "too-long" {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) return "malformed";
  const ms = Math.round(Number(m[1]) * DURATION_UNITS[m[2]]);
  return ms <= MAX_DURATION_MS ? ms : "too-long";
}

/** `300ms`, `6s`, `10m`, `2h`, `1d` → milliseconds, at most MAX_DURATION_MS. */
export function parseDuration(variable: string, text: string): number {
  const ms = durationMs(text);
  if (ms === "malformed") throw new ConfigError(variable, text, "a duration such as 300ms, 6s, 10m, 2h or 1d");
  if (ms === "too-long") throw new ConfigError(variable, text, `a duration of at most ${MAX_DURATION_TEXT}`);
  return ms;
}

/** Milliseconds as an operator writes them: `7d`, `4h`, `1500ms`; the largest unit that divides it. */
export function durationText(ms: number): string {
  const [unit, size] = Object.entries(DURATION_UNITS).reverse().find(([, size]) => ms % size === 0 && ms >= size) ?? ["ms", 1];
  return `${ms / size}${unit}`;
}
