/**
 * Runs every test/**\/*.test.ts on the runtime that runs this file, one test at a time, and
 * ends with a machine-readable summary line that test/run-all.mjs sums over runtimes.
 * Arguments filter tests by substring of "file > name".
 */
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { runtimeName } from "../src/net/runtime/which-runtime.ts";
import { takeAloneLock } from "./alone-lock.ts";
import { registered, runCleanups, setCurrentFile } from "./harness.ts";

const root = fileURLToPath(new URL(".", import.meta.url));
const filters = process.argv.slice(2);

function findTests(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return findTests(path);
    return entry.name.endsWith(".test.ts") ? [path] : [];
  }).sort();
}

for (const file of findTests(root)) {
  setCurrentFile(relative(root, file));
  await import(pathToFileURL(file).href);
}

const runtime = runtimeName();
let passed = 0;
let failed = 0;
for (const t of registered()) {
  const label = `${t.file} > ${t.name}`;
  if (filters.length > 0 && !filters.some((f) => label.includes(f))) continue;
  if (t.runsOn !== undefined && !runtime.startsWith(t.runsOn)) {
    console.log(`skip [${runtime}] ${label} (runs on ${t.runsOn} only)`);
    continue;
  }
  const release = t.alone ? await takeAloneLock() : undefined;
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(t.fn),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${t.timeoutMs} ms`)), t.timeoutMs);
      }),
    ]);
    passed++;
    console.log(`ok   [${runtime}] ${label} (${Math.round(performance.now() - started)} ms)`);
  } catch (error) {
    failed++;
    console.log(`FAIL [${runtime}] ${label} (${Math.round(performance.now() - started)} ms)`);
    console.log(String((error as Error)?.stack ?? error).replace(/^/gm, "     "));
  } finally {
    clearTimeout(timer);
    await runCleanups();
    release?.();
  }
}
console.log(`${runtime}: ${passed} passed, ${failed} failed`);
console.log(`##mxscreen-tests ${JSON.stringify({ runtime, passed, failed })}`);
process.exit(failed > 0 ? 1 : 0);
