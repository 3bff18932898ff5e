import { bareNewline } from "./bare-newline.ts";
import { commandLimit } from "./command-limit.ts";
import { dictionary } from "../dictionary/dictionary.ts";
import { dnsbl } from "../dnsbl/dnsbl.ts";
import { ehloRefused } from "./ehlo-refused.ts";
import { fakeBounce } from "./fake-bounce.ts";
import { greylist } from "../greylist/greylist.ts";
import { heloSchizo } from "./helo-schizo.ts";
import { heloSyntax } from "./helo-syntax.ts";
import { nonSmtp } from "./non-smtp.ts";
import { pipelining } from "./pipelining.ts";
import { ptr } from "./ptr.ts";
import { rset } from "./rset.ts";
import { senderDomain } from "./sender-domain.ts";
import { transactions } from "./transactions.ts";
import { trap } from "./trap.ts";
import { unknownCommands } from "./unknown-commands.ts";
import type { Check, Stage } from "./types.ts";

/**
 * Every check the session runs, in the order they run within a stage: the first hit that
 * closes the connection or answers the command ends the stage. Adding a check: one file and
 * one line here.
 */
export const CHECKS: readonly Check[] = [
  dnsbl,
  nonSmtp,
  bareNewline,
  pipelining,
  commandLimit,
  unknownCommands,
  rset,
  transactions,
  heloSchizo,
  heloSyntax,
  senderDomain,
  trap,
  dictionary,
  greylist,
  fakeBounce,
  ehloRefused,
  ptr,
];

const BY_STAGE = new Map<Stage, readonly Check[]>();
for (const check of CHECKS) BY_STAGE.set(check.stage, [...(BY_STAGE.get(check.stage) ?? []), check]);

/** The checks of one stage, in registry order (computed once: this runs before every command). */
export function checksAt(stage: Stage): readonly Check[] {
  return BY_STAGE.get(stage) ?? [];
}

/** `bare-newline` → `MXSCREEN_ACTION_BARE_NEWLINE`. */
export function actionVariable(checkId: string): string {
  return `MXSCREEN_ACTION_${checkId.toUpperCase().replaceAll("-", "_")}`;
}
