import process from "node:process";
import { fileURLToPath } from "node:url";
import DENO_PERMISSIONS from "./deno-permissions.json" with { type: "json" };

export function runtimeName(): string {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.bun) return `bun ${versions.bun}`;
  if (versions.deno) return `deno ${versions.deno}`;
  return `node ${process.versions.node}`;
}

/** The command that starts this same program again on this runtime, with the same permissions. */
export function ownCommand(): { command: string; args: string[] } {
  const deno = (globalThis as { Deno?: { execPath(): string; mainModule: string } }).Deno;
  if (deno) return { command: deno.execPath(), args: ["run", ...DENO_PERMISSIONS, fileURLToPath(deno.mainModule)] };
  // The single binary (npm run build) is its own runtime and script: it takes only its own arguments (`serve`).
  if ((globalThis as { Bun?: { isStandaloneExecutable?: boolean } }).Bun?.isStandaloneExecutable) {
    return { command: process.execPath, args: process.argv.slice(2) };
  }
  // The environment is inherited, .env values included: the child must not read the file again.
  return { command: process.execPath, args: ["--no-env-file", process.argv[1]] };
}
