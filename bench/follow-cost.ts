/**
 * What following costs a node against sqld: HTTP requests per minute and bytes per day, idle
 * (nothing changes) and busy (another node bans one address a second), counted by a TCP proxy
 * on loopback in front of sqld. Over HTTP and as an embedded replica, at the default pace
 * (250 ms, slowing to 5 s while idle) and at a constant 250 ms (how every node followed before).
 *
 *   npm run bench:follow                     (both runtimes)
 *   node_modules/.bin/deno run -A bench/follow-cost.ts --seconds 60
 *   node_modules/.bin/bun bench/follow-cost.ts --seconds 60
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseIP } from "../src/ip/address.ts";
import { runtimeName } from "../src/net/runtime/which-runtime.ts";
import { Store } from "../src/store/store.ts";
import { createInterface } from "node:readline";
import { runtimeCommand } from "../test/helpers/server.ts";
import { withSqld } from "./sqld.ts";

const args = process.argv.slice(2);
const i = args.indexOf("--seconds");
const SECONDS = i >= 0 ? Number(args[i + 1]) : 60;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const INFO = { runtime: runtimeName(), listen: "-", startedAt: Date.now() };

/**
 * A counting proxy of its own for each configuration: a replica's background sync goes on after
 * its client is closed, until the runtime collects it (on Deno, for the rest of the run), and
 * an earlier configuration's replica would be counted with the next one's (it doubled the busy
 * replica's bytes, and quadrupled them by the fourth configuration).
 */
async function countingProxy(port: number) {
  const { command, args: commandArgs } = runtimeCommand(
    runtimeName().startsWith("deno") ? "deno" : "bun",
    join(ROOT, "bench/counting-proxy-process.ts"),
  );
  const counter = spawn(command, [...commandArgs, String(port)], { stdio: ["pipe", "pipe", "inherit"] });
  const answers = createInterface({ input: counter.stdout! })[Symbol.asyncIterator]();
  const ask = async (line: string) => {
    counter.stdin!.write(`${line}\n`);
    return JSON.parse(String((await answers.next()).value)) as { requests: number; bytesUp: number; bytesDown: number };
  };
  const url = JSON.parse(String((await answers.next()).value)).url as string;
  return { ask, url, stop: () => counter.kill() };
}

await withSqld(async (url, dir, port) => {
  const writer = await Store.open({ url, node: "writer", queueFile: join(dir, "writer.jsonl") }, (e) => console.error(e.message));
  let n = 0;
  for (const mode of (args.includes("--replica-only") ? ["replica"] : ["http", "replica"]) as ("http" | "replica")[]) {
    for (const pace of [{ name: "default", fastMs: 250, idleMs: 5000 }, { name: "constant 250 ms", fastMs: 250, idleMs: 250 }]) {
      for (const load of ["idle", "busy"] as const) {
        const proxy = await countingProxy(port);
        const node = `node-${n++}`;
        const options = mode === "http"
          ? { url: proxy.url, node, queueFile: join(dir, `${node}.jsonl`) }
          : { url: `file:${join(dir, `${node}.db`)}`, syncUrl: proxy.url, node, queueFile: join(dir, `${node}.jsonl`) };
        const store = await Store.open(options, (e) => console.error(e.message));
        store.follow({ fastMs: pace.fastMs, idleMs: pace.idleMs }, INFO);
        await new Promise((r) => setTimeout(r, 6000));
        await proxy.ask("reset");
        const banner = load === "busy"
          ? setInterval(
            () =>
              writer.set(
                "ban",
                { prefix: { ip: parseIP(`10.9.${n}.${Math.floor(Math.random() * 250)}`)!, length: 32 }, ttlMs: 60_000 },
                Date.now(),
              ),
            1000,
          )
          : undefined;
        await new Promise((r) => setTimeout(r, SECONDS * 1000));
        clearInterval(banner);
        const { requests, bytesUp, bytesDown } = await proxy.ask("counts");
        const perMinute = (requests * 60) / SECONDS;
        const bytesPerDay = ((bytesUp + bytesDown) * 86_400) / SECONDS;
        console.log(
          JSON.stringify({ runtime: runtimeName(), mode, pace: pace.name, load, seconds: SECONDS, requests, bytesUp, bytesDown }),
        );
        console.log(
          `| ${runtimeName()} | ${mode} | ${pace.name} | ${load} | ${perMinute.toFixed(0)} | ${(bytesPerDay / 1e6).toFixed(1)} MB |`,
        );
        await store.close();
        proxy.stop();
      }
    }
  }
  await writer.close();
});
