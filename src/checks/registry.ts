import { dictionary } from "../dictionary/index.ts";
import { dnsbl } from "../dnsbl/index.ts";
import { greylist } from "../greylist/index.ts";
import { harvest } from "../harvest/index.ts";
import { bareNewline } from "./bare-newline.ts";
import { commandLimit } from "./command-limit.ts";
import { connectionLimit } from "./connection-limit.ts";
import { connRate } from "./conn-rate.ts";
import { ehloRefused } from "./ehlo-refused.ts";
import { fakeBounce } from "./fake-bounce.ts";
import { msgRate } from "./msg-rate.ts";
import { heloSchizo } from "./helo-schizo.ts";
import { heloClaims } from "./helo-claims.ts";
import { heloSyntax } from "./helo-syntax.ts";
import { nonSmtp } from "./non-smtp.ts";
import { pipelining } from "./pipelining.ts";
import { pregreet } from "./pregreet.ts";
import { ptr } from "./ptr.ts";
import { rcptRate } from "./rcpt-rate.ts";
import { rset } from "./rset.ts";
import { senderDomain } from "./sender-domain.ts";
import { transactions } from "./transactions.ts";
import { trap } from "./trap.ts";
import { unknownCommands } from "./unknown-commands.ts";
import type { CheckAction, CheckActions, Consequence, EffectiveAction, Hit, SharedSettings, Stage, StageFacts } from "./types.ts";

/**
 * Every check, the gate's and the session's, in the order they run within a stage: the first
 * hit that closes the connection or answers the command ends the stage. Adding a check: its
 * file, its test and one line here.
 */
export const CHECKS = [
  connectionLimit,
  connRate,
  pregreet,
  dnsbl,
  nonSmtp,
  bareNewline,
  pipelining,
  commandLimit,
  unknownCommands,
  rset,
  transactions,
  msgRate,
  heloSchizo,
  heloClaims,
  heloSyntax,
  senderDomain,
  trap,
  dictionary,
  rcptRate,
  harvest,
  greylist,
  fakeBounce,
  ehloRefused,
  ptr,
] as const;

type AnyCheck = (typeof CHECKS)[number];

/** Every check id: what MXSCREEN_ACTION_<ID>, the log's `check=`, `check_id` rows and the metrics' `check` label say. */
export type CheckId = AnyCheck["id"];

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
type KnobsOf<C> = C extends { readonly evaluate: (facts: never, settings: infer S) => unknown } ? S : never;

/** The knobs of every check, as the configuration parsed them from what each check declares. */
export type ChecksSettings = SharedSettings & UnionToIntersection<KnobsOf<AnyCheck>>;

/** A check as a stage runs it: whatever its own knobs, it is handed all of them. */
export interface StageCheck<St extends Stage> {
  readonly id: CheckId;
  readonly tag: string;
  readonly consequence: Consequence;
  readonly defaultAction: CheckAction;
  evaluate(facts: StageFacts[St], settings: ChecksSettings): Hit | undefined;
}

const BY_STAGE = new Map<Stage, readonly AnyCheck[]>();
for (const check of CHECKS) BY_STAGE.set(check.stage, [...(BY_STAGE.get(check.stage) ?? []), check]);

/** The checks of one stage, in registry order (computed once: this runs before every command). */
export function checksAt<St extends Stage>(stage: St): readonly StageCheck<St>[] {
  // Sound: BY_STAGE files each check under its own stage, so its facts are those of `stage`.
  return (BY_STAGE.get(stage) ?? []) as unknown as readonly StageCheck<St>[];
}

/** `bare-newline` → `MXSCREEN_ACTION_BARE_NEWLINE`. */
export function actionVariable(checkId: string): string {
  return `MXSCREEN_ACTION_${checkId.toUpperCase().replaceAll("-", "_")}`;
}

/** The one rule for what a hit does: nothing but a log entry in observe mode, else the configured action or the check's default. */
export function effectiveAction(
  check: { readonly id: CheckId; readonly defaultAction: CheckAction },
  actions: CheckActions,
  observe: boolean,
): EffectiveAction {
  return observe ? "observe" : actions[check.id] ?? check.defaultAction;
}
