import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { ROOT, RUNTIME, tempDir } from "./server.ts";

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `mxscreen ARGS` through the launcher on the runtime running the tests, on the store at `dbUrl`; `env` adds to its environment. */
export function cli(dbUrl: string, args: string[], cwd = tempDir(), env: Record<string, string> = {}): Promise<CliResult> {
  return run("node", [join(ROOT, "src/cli/launch.mjs"), "--runtime", RUNTIME, "src/cli/mxscreen.ts", ...args], cwd, {
    MXSCREEN_DB_URL: dbUrl,
    MXSCREEN_NODE: "cli",
    ...env,
  });
}

/** Runs `command` in `cwd` with only PATH, HOME and `env` in its environment; resolves when it exits. */
export function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd,
      env: { PATH: process.env.PATH ?? "", HOME: cwd, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => stdout += d);
    child.stderr!.setEncoding("utf8").on("data", (d: string) => stderr += d);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
