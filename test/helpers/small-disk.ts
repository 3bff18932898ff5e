import { execFileSync } from "node:child_process";
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { onCleanup } from "../harness.ts";
import { tempDir } from "./server.ts";

/** A tmpfs of `kib` KiB of its own (the tests run as root), unmounted after the test. */
export function smallDisk(kib: number): string {
  const dir = tempDir("mxscreen-disk-");
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${kib}k,mode=0755`, "tmpfs", dir]);
  // Registered after tempDir's removal, so it runs first: the mount goes, then the directory.
  onCleanup(() => execFileSync("umount", ["-l", dir]));
  return dir;
}

/** Fills the disk under `dir` to the last byte (until ENOSPC) with one file, whose path it returns: removing it frees the space. */
export function fill(dir: string, name = "filler"): string {
  const path = join(dir, name);
  const fd = openSync(path, "w");
  const chunk = new Uint8Array(4096);
  try {
    // Bounded by any disk a test makes: 1 GiB of 4 KiB writes.
    for (let i = 0; i < 262_144; i++) writeSync(fd, chunk);
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOSPC") throw error;
  } finally {
    closeSync(fd);
  }
  return path;
}

export function free(path: string): void {
  rmSync(path, { force: true });
}
