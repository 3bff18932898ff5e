/**
 * A machine-wide lock for the tests marked `alone`: a directory made atomically, holding the PID
 * of the suite that made it, so a suite that died holding it does not block the others.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const LOCK = join(tmpdir(), "mxscreen-tests-alone.lock");
const OWNER = join(LOCK, "pid");
const WAIT_LIMIT_MS = 15 * 60_000;

function holderIsGone(): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(OWNER, "utf8"));
  } catch {
    return false; // made, its PID not written yet
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as { code?: string }).code === "ESRCH";
  }
}

/** Waits until this suite holds the lock; the returned function gives it back. */
export async function takeAloneLock(): Promise<() => void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(OWNER, String(process.pid));
      return () => rmSync(LOCK, { recursive: true, force: true });
    } catch (error) {
      if ((error as { code?: string }).code !== "EEXIST") throw error;
      if (holderIsGone()) {
        rmSync(LOCK, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(`${LOCK} held by another test suite for over ${WAIT_LIMIT_MS / 60_000} minutes: remove it if no suite runs`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
