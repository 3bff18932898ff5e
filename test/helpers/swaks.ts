import { spawn } from "node:child_process";

export interface SwaksResult {
  readonly code: number | null;
  readonly output: string;
}

/** Runs Debian's swaks against a loopback port; the transcript comes back for assertions and failures. */
export function swaks(args: string[], timeoutMs = 30_000): Promise<SwaksResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("swaks", ["--timeout", "20", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => output += d);
    child.stderr.setEncoding("utf8").on("data", (d: string) => output += d);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run swaks (${error.message}): install Debian's swaks package`));
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
