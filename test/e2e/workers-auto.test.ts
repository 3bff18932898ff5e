import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { test } from "../harness.ts";
import { ROOT, RUNTIME, runtimeCommand, startServer } from "../helpers/server.ts";
import { swaks } from "../helpers/swaks.ts";

/** What MXSCREEN_WORKERS=auto should choose on a machine of `cpus` cores. */
const auto = (cpus: number) => (cpus <= 2 ? 0 : cpus);

test("MXSCREEN_WORKERS unset: the runtime counts the cores this process may use, and the server runs inline on two or fewer", async () => {
  const run = runtimeCommand(RUNTIME, join(ROOT, "src/main.ts"));
  const cases = [
    { label: "this machine", command: run, workers: auto(availableParallelism()) },
    // One core by CPU affinity, as `taskset` or a cpuset gives it: the runtime must count 1, not the machine's cores.
    { label: "taskset -c 0", command: { command: "taskset", args: ["-c", "0", run.command, ...run.args] }, workers: 0 },
  ];
  for (const c of cases) {
    const server = await startServer({ MXSCREEN_WORKERS: "", MXSCREEN_GREET_WAIT: "300ms" }, { command: c.command });
    await server.waitForLine(new RegExp(`msg="mxscreen started" .* workers=${c.workers} `));
    const result = await swaks([
      "--server",
      `127.0.0.1:${server.port}`,
      "--helo",
      "client.example.net",
      "--from",
      "sender@example.net",
      "--to",
      "someone@example.org",
    ]);
    assert.equal(result.code, 0, `${c.label}: ${result.output}`);
    await server.stop();
  }
}, { timeoutMs: 60_000 });
