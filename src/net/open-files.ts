import { spawnSync } from "node:child_process";
import { closeSync, openSync } from "node:fs";

/** When the limit cannot be read: the usual soft limit, so the defaults stay below it. */
export const USUAL_OPEN_FILES = 1024;

/**
 * The soft open-files limit of this process (RLIMIT_NOFILE), as `ulimit -n` in a shell it
 * starts sees it (Deno refuses to read /proc/self without --allow-all); undefined when the
 * shell cannot be run (Deno without --allow-run) or answers nothing usable.
 */
export function openFilesLimit(): number | undefined {
  let text: string;
  try {
    const answer = spawnSync("/bin/sh", ["-c", "ulimit -n"], { encoding: "utf8" });
    text = typeof answer.stdout === "string" ? answer.stdout.trim() : "";
  } catch {
    return undefined;
  }
  if (text === "unlimited") return 1_048_576;
  const limit = Number(text);
  return Number.isInteger(limit) && limit > 0 ? limit : undefined;
}

/** Whether this process can open one more file now: false at its open-files limit (EMFILE). */
export function canOpenFile(): boolean {
  try {
    closeSync(openSync("/dev/null", "r"));
    return true;
  } catch (error) {
    const code = (error as { code?: string }).code;
    return code !== "EMFILE" && code !== "ENFILE";
  }
}
