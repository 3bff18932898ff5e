import process from "node:process";
/** What Deno needs granted to run mxscreen: libSQL loads a native addon through FFI (RUNTIME-NOTES). */
import DENO_PERMISSIONS from "./deno-permissions.json" with { type: "json" };

export function runtimeName(): string {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.bun) return `bun ${versions.bun}`;
  if (versions.deno) return `deno ${versions.deno}`;
  return `node ${process.versions.node}`;
}

/** The command line that runs `script` on this same runtime, e.g. for a test to start a server. */
export function selfCommand(script: string, args: string[] = []): { command: string; args: string[] } {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.deno) return { command: process.execPath, args: ["run", ...DENO_PERMISSIONS, "--allow-run", script, ...args] };
  return { command: process.execPath, args: [script, ...args] };
}
