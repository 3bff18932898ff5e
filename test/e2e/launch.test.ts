import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { runtimeName } from "../../src/net/runtime.ts";
import { onCleanup, test } from "../harness.ts";
import { startDnsmasq } from "../helpers/dnsmasq.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { freePort, ROOT, tempDir } from "../helpers/server.ts";

const runtime = runtimeName().split(" ")[0];

test(`the launcher starts mxscreen on ${runtime} with the settings of .env in the working directory`, async () => {
  const dir = tempDir();
  const port = await freePort();
  const dns = await startDnsmasq();
  writeFileSync(join(dir, ".env"), [
    `MXSCREEN_DNS=${dns.address}`,
    `MXSCREEN_LISTEN=127.0.0.1:${port}`,
    "MXSCREEN_NODE=from-dotenv",
    "MXSCREEN_HOSTNAME=dotenv.test.example",
    "MXSCREEN_WORKERS=0",
    "MXSCREEN_GREET_WAIT=200ms",
  ].join("\n") + "\n");
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
