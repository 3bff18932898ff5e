import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** The messages a server has put in its spool's `new/`, as text. */
export function spooled(spoolDir: string): string[] {
  return readdirSync(join(spoolDir, "new")).map((f) => readFileSync(join(spoolDir, "new", f), "utf8"));
}
