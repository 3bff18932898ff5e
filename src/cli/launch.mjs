#!/usr/bin/env node
// Starts a mxscreen script on Deno or Bun, both installed from npm into node_modules.
// `npm start` and `deno task start` run Deno (the default); `bun run start` runs Bun;
// `--runtime bun|deno` or MXSCREEN_RUNTIME chooses explicitly. A `.env` in the working
// directory is loaded by the runtime itself (Deno --env-file, Bun --env-file), the same file
// on both. Signals are passed on, and the exit code comes back.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const args = process.argv.slice(2);
let runtime = process.env.MXSCREEN_RUNTIME ?? (/^bun\//.test(process.env.npm_config_user_agent ?? "") ? "bun" : "deno");
if (args[0] === "--runtime") {
  runtime = args[1];
  args.splice(0, 2);
}
if (runtime !== "deno" && runtime !== "bun") {
  console.error(`mxscreen: runtime ${JSON.stringify(runtime)} is not valid: expected deno or bun (MXSCREEN_RUNTIME or --runtime)`);
  process.exit(2);
}
const [script, ...rest] = args;
if (!script) {
  console.error("usage: node src/cli/launch.mjs [--runtime deno|bun] SCRIPT [ARGS...]");
  process.exit(2);
}
const binary = join(root, "node_modules", runtime, runtime === "deno" ? "deno" : "bin/bun.exe");
if (!existsSync(binary)) {
  console.error(`mxscreen: ${binary} is missing: run \`npm install\` in ${root} first`);
  process.exit(2);
}
const envFile = existsSync(".env") ? ["--env-file=.env"] : [];
const permissions = JSON.parse(readFileSync(join(root, "src/net/runtime/deno-permissions.json"), "utf8"));
const command = runtime === "deno"
  ? ["run", ...permissions, ...envFile, join(root, script), ...rest]
  : [...envFile, envFile.length === 0 ? "--no-env-file" : "", join(root, script), ...rest].filter((a) => a !== "");
const child = spawn(binary, command, { stdio: "inherit" });
// npm's scripts start this through `exec` (package.json), so a SIGTERM npm passes on reaches
// us rather than a shell that would die and leave the server running; a Ctrl-C reaches the
// whole terminal's group, the runtime included, which is why the runtime's own stop ignores
// the copy we send.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
