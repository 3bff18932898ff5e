import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { runtimeName } from "../../src/net/runtime/which-runtime.ts";
import { onCleanup, test } from "../harness.ts";
import { startDnsmasq } from "../helpers/dnsmasq.ts";
import { eventually } from "../helpers/eventually.ts";
import { alive } from "../helpers/pid.ts";
import { run } from "../helpers/cli.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { spooled } from "../helpers/spooled.ts";
import { swaks } from "../helpers/swaks.ts";
import { freePort, ROOT, startServer, tempDir } from "../helpers/server.ts";

const runtime = runtimeName().split(" ")[0];

test(`the launcher starts mxscreen on ${runtime} with the settings of .env in the working directory`, async () => {
  const dir = tempDir();
  const port = await freePort();
  const dns = await startDnsmasq();
  writeFileSync(
    join(dir, ".env"),
    [
      `MXSCREEN_DNS=${dns.address}`,
      `MXSCREEN_LISTEN=127.0.0.1:${port}`,
      "MXSCREEN_NODE=from-dotenv",
      "MXSCREEN_HOSTNAME=dotenv.test.example",
      "MXSCREEN_WORKERS=0",
      "MXSCREEN_GREET_WAIT=200ms",
    ].join("\n") + "\n",
  );
  const child = spawn("node", [join(ROOT, "src/cli/launch.mjs"), "--runtime", runtime, "src/main.ts"], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", HOME: dir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  onCleanup(async () => {
    if (child.exitCode === null) process.kill(child.pid!, "SIGKILL");
    await exited;
  });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => out += d);
  child.stderr!.setEncoding("utf8").on("data", (d: string) => out += d);
  const deadline = Date.now() + 20_000;
  while (!/mxscreen started/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  assert.match(out, new RegExp(`node=from-dotenv level=info msg="mxscreen started" runtime="${runtime} `), out);
  const c = await RawClient.open(port, "127.0.0.71");
  await c.until(/^220 dotenv\.test\.example ESMTP\r\n/m);
  c.write("QUIT\r\n");
  await c.waitClosed();
  process.kill(child.pid!, "SIGTERM");
  assert.equal(await exited, 0);
  assert.match(out, /msg=stopped/);
}, { timeoutMs: 30_000 });

/**
 * `npm run start:<runtime>` as an operator types it, from the repository, with its data in a
 * temporary directory; resolves once the server said it started, with the server's own PID.
 */
async function npmStart(group: boolean, records: string[] = []) {
  const dir = tempDir();
  const port = await freePort();
  const dns = await startDnsmasq(records);
  const child = spawn("npm", ["run", `start:${runtime}`], {
    cwd: ROOT,
    // Its own process group, as a terminal gives a foreground job, so that a Ctrl-C can be sent to the whole group.
    detached: group,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: dir,
      MXSCREEN_DNS: dns.address,
      MXSCREEN_LISTEN: `127.0.0.1:${port}`,
      MXSCREEN_ADMIN_LISTEN: "",
      MXSCREEN_HOSTNAME: "mx.launch.example",
      MXSCREEN_DB_URL: `file:${join(dir, "mxscreen.db")}`,
      MXSCREEN_SPOOL_DIR: join(dir, "spool"),
      MXSCREEN_QUEUE_FILE: join(dir, "store-queue.jsonl"),
      MXSCREEN_WORKERS: "0",
      MXSCREEN_GREET_WAIT: "200ms",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => out += d);
  child.stderr!.setEncoding("utf8").on("data", (d: string) => out += d);
  let serverPid: number | undefined;
  onCleanup(async () => {
    if (serverPid !== undefined && alive(serverPid)) process.kill(serverPid, "SIGKILL");
    if (alive(child.pid!)) process.kill(child.pid!, "SIGKILL");
    await exited;
  });
  const deadline = Date.now() + 30_000;
  while (!/mxscreen started.* pid=\d+/.test(out) && Date.now() < deadline && child.exitCode === null) {
    await new Promise((r) => setTimeout(r, 50));
  }
  serverPid = Number(/mxscreen started.* pid=(\d+)/.exec(out)?.[1]);
  assert.ok(serverPid > 0, `no start line with the server's pid from npm run start:${runtime}:\n${out}`);
  assert.notEqual(serverPid, child.pid, "the server is a process of its own, below npm");
  const c = await RawClient.open(port, "127.0.0.72");
  await c.until(/^220 mx\.launch\.example ESMTP\r\n/m);
  c.write("QUIT\r\n");
  await c.waitClosed();
  return { child, exited, serverPid, port, dir, output: () => out };
}

test(`SIGTERM to npm run start:${runtime} stops the server: it exits 0 and its PID is gone`, async () => {
  const { child, exited, serverPid, output } = await npmStart(false);
  process.kill(child.pid!, "SIGTERM");
  assert.equal(await exited, 0, output());
  await eventually(`the server (pid ${serverPid}) gone after npm exited:\n${output()}`, () => !alive(serverPid));
  assert.match(output(), /msg=stopped/);
}, { timeoutMs: 45_000 });

test(`Ctrl-C on npm run start:${runtime} (SIGINT to its process group) stops the server once, cleanly`, async () => {
  const { child, exited, serverPid, output } = await npmStart(true);
  process.kill(-child.pid!, "SIGINT");
  assert.equal(await exited, 0, output());
  await eventually(`the server (pid ${serverPid}) gone after npm exited:\n${output()}`, () => !alive(serverPid));
  assert.equal(output().match(/msg=stopped/g)?.length, 1, output());
}, { timeoutMs: 45_000 });

test(`a banner name that is not fully qualified is warned about at start on ${runtime}, and a qualified one is not`, async () => {
  const bare = await startServer({ MXSCREEN_HOSTNAME: "mx" });
  const warning = await bare.waitForLine(/level=warn msg="the banner name is not fully qualified/);
  assert.match(warning, /hostname=mx from=MXSCREEN_HOSTNAME/);
  const qualified = await startServer({ MXSCREEN_HOSTNAME: "mx1.example.net" });
  assert.ok(!qualified.lines.some((line) => /fully qualified/.test(line)), qualified.lines.join("\n"));
}, { timeoutMs: 30_000 });

test(
  `the README's "Try it" on ${runtime}, on a machine whose resolver knows nothing: a local dnsmasq as MXSCREEN_DNS, the rude client from a second address`,
  async () => {
    // The records the README's dnsmasq line gives; every other name is NXDOMAIN, as with its --local=/#/.
    const { port, dir, child, exited } = await npmStart(false, [
      "--mx-host=your-domain.example,mail.your-domain.example,10",
      "--host-record=mail.your-domain.example,192.0.2.25",
    ]);
    const sent = await swaks([
      "--server",
      `127.0.0.1:${port}`,
      "--helo",
      "mail.your-domain.example",
      "--from",
      "you@your-domain.example",
      "--to",
      "someone@example.org",
    ]);
    assert.match(sent.output, /<- {2}250 2\.0\.0 /, sent.output);
    assert.equal(spooled(join(dir, "spool")).length, 1);
    const rude = await RawClient.open(port, "127.0.0.2");
    await rude.until(/^220-/);
    rude.write("EHLO bot\r\n");
    await rude.waitClosed(3000);
    const mxscreen = (...args: string[]) =>
      run("npm", ["run", "-s", "mxscreen", "--", ...args], ROOT, {
        HOME: dir,
        MXSCREEN_RUNTIME: runtime,
        MXSCREEN_DB_URL: `file:${join(dir, "mxscreen.db")}`,
      });
    await eventually("the ban of 127.0.0.2 written", async () => /PREGREET/.test((await mxscreen("explain", "127.0.0.2")).stdout));
    const removed = await mxscreen("ban", "rm", "127.0.0.2");
    assert.equal(removed.code, 0, removed.stderr);
    const again = await RawClient.greeted(port, "127.0.0.1");
    assert.match(again.text, /^220 /m, "your own address was never banned");
    process.kill(child.pid!, "SIGTERM");
    assert.equal(await exited, 0);
  },
  { timeoutMs: 60_000 },
);
