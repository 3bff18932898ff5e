import { spawn } from "node:child_process";
import { onCleanup } from "../harness.ts";
import { tempDir } from "./server.ts";

/** Flags for a headless Chromium that never reaches beyond this machine (env notes: background networking off). */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-extensions",
  // Debian's wrapper adds it only when it can read /dev/shm's free space, which fails where /dev/shm is mounted twice.
  "--disable-dev-shm-usage",
];

/** How long one start of the browser may take before it is taken for hung. */
const ATTEMPT_MS = 20_000;

class BrowserHung extends Error {}

function attempt(args: string[]): Promise<string> {
  const profile = tempDir("mxscreen-chromium-");
  return new Promise((resolve, reject) => {
    const child = spawn("chromium", [...FLAGS, `--user-data-dir=${profile}`, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let hung = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => out += d);
    child.stderr.setEncoding("utf8").on("data", (d: string) => err += d);
    const timer = setTimeout(() => {
      hung = true;
      child.kill("SIGKILL");
    }, ATTEMPT_MS);
    onCleanup(() => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
    child.on("error", (error) => reject(new Error(`cannot run chromium (${error.message}): install Debian's chromium package`)));
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else if (hung) reject(new BrowserHung(`chromium did not finish within ${ATTEMPT_MS} ms: ${err.slice(-2000)}`));
      else reject(new Error(`chromium exited ${code}: ${err.slice(-2000)}`));
    });
  });
}

/**
 * Runs the browser once more, on a fresh profile, when a start hangs: on a loaded machine a
 * headless Chromium now and then never finishes a page that loaded (seen in CI, 1 start in
 * several hundred). An exit with an error is the page's or the setup's fault and is not retried.
 */
async function chromium(args: string[]): Promise<string> {
  try {
    return await attempt(args);
  } catch (error) {
    if (!(error instanceof BrowserHung)) throw error;
    console.error(`chromium: ${error.message.split("\n")[0]}; starting it once more`);
    return await attempt(args);
  }
}

/** The page's DOM as the browser built it. */
export function renderedDom(url: string): Promise<string> {
  return chromium(["--virtual-time-budget=3000", "--dump-dom", url]);
}

/** A PNG of the page, as a person would see it. */
export async function screenshot(url: string, file: string): Promise<void> {
  await chromium(["--window-size=1200,1800", "--hide-scrollbars", `--screenshot=${file}`, url]);
}
