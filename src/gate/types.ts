import type { CheckActions, EffectiveAction } from "../checks/types.ts";
import { type CheckId, CHECKS, type ChecksSettings } from "../checks/registry.ts";
import type { Prefix } from "../ip/address.ts";
import type { LogValue } from "../log/logger.ts";

export interface GateConfig {
  readonly hostname: string;
  readonly greetWaitMs: number;
  /** The greet wait while the process is under stress. */
  readonly greetWaitStressMs: number;
  readonly banAction: "reject" | "drop";
  /** MXSCREEN_BAN_ENDS_SESSIONS: a ban made anywhere in the fleet ends the open connections it covers. */
  readonly banEndsSessions: boolean;
  /** MXSCREEN_ACTION_<CHECK> and the checks' knobs, for the checks the gate runs. */
  readonly actions: CheckActions;
  readonly checks: ChecksSettings;
  readonly observe: boolean;
}

/** The parts of the gate and the session end that decide a connection besides the checks (README: The log). */
export const GATE_DECIDERS = [
  "greet-wait",
  "proxy-protocol",
  "allow",
  "manual",
  "timeout",
  "error-limit",
  "tls-failed",
  "session-worker",
  "session",
  "none",
] as const;

/** Who decided a connection: a check, or a part of the gate. */
export type Decider = CheckId | (typeof GATE_DECIDERS)[number];

/** The check a ban row names, as a decider: `manual` for a ban from the CLI or the API, or one naming no check this version knows. */
export function decider(stored: string | null): Decider {
  return KNOWN_DECIDERS.has(stored ?? "") ? stored as Decider : "manual";
}

const KNOWN_DECIDERS = new Set<string>([...CHECKS.map((check) => check.id), ...GATE_DECIDERS]);

/** What was done besides a check's action: closed, let through, nothing (the client left), or a ban's refusal. */
export type GateOutcome = "close" | "pass" | "none" | "reject" | "drop";

/** A test's finding about a connection: the log tag, who decided, its evidence, and what was done. */
export interface Finding {
  readonly event: string;
  readonly check: Decider;
  readonly action: EffectiveAction | GateOutcome;
  readonly evidence: Readonly<Record<string, LogValue>>;
  /** With the action `ban`: the prefix banned, when it is not the client's own (a harvesting /24 or /64). */
  readonly banPrefix?: Prefix;
  /** The client's pass is taken back, also one it had before this connection (a harvester passed before the harvest began). */
  readonly takesPass?: boolean;
}

export type GateAction =
  | { readonly type: "write"; readonly text: string }
  /** Close after what was written. */
  | { readonly type: "close" }
  /** Close at once without a word. */
  | { readonly type: "drop" }
  /** Greeted: the SMTP session takes over, with any bytes that arrived early and were let through. */
  | { readonly type: "handoff"; readonly early: Uint8Array | undefined }
  /** The connection is decided here and never reaches a session. */
  | { readonly type: "conclude"; readonly finding: Finding };
