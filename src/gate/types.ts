import type { CheckAction } from "../checks/types.ts";
import type { LogValue } from "../log/logger.ts";

export interface GateConfig {
  readonly hostname: string;
  readonly greetWaitMs: number;
  /** The greet wait while the process is under stress. */
  readonly greetWaitStressMs: number;
  readonly banAction: "reject" | "drop";
  readonly pregreetAction: CheckAction;
  readonly observe: boolean;
}

/** A test's finding about a connection: the log tag, the check id, its evidence, and what was done. */
export interface Finding {
  readonly event: string;
  readonly check: string;
  readonly action: string;
  readonly evidence: Readonly<Record<string, LogValue>>;
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
