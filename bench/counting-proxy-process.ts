/**
 * The counting proxy in a process of its own: an embedded replica syncs in native code that
 * holds the JavaScript thread on Deno, so a proxy in the same process would never forward its
 * bytes. Prints `{"url": ...}` once, then answers each `counts` or `reset` line on stdin with
 * the counts as one JSON line.
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { startCountingProxy } from "../test/helpers/counting-proxy.ts";

const proxy = await startCountingProxy(Number(process.argv[2]));
console.log(JSON.stringify({ url: proxy.url }));
for await (const line of createInterface({ input: process.stdin })) {
  const counts = proxy.counts();
  if (line.trim() === "reset") proxy.reset();
  console.log(JSON.stringify(counts));
}
await proxy.stop();
