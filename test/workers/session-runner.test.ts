import assert from "node:assert/strict";
import { loadConfig } from "../../src/config/config.ts";
import { runnerConfig } from "../../workers/runner-config.ts";
import { SessionRunner } from "../../workers/session-runner.ts";
import type { FromRunner } from "../../workers/types.ts";
import { test } from "../harness.ts";
import { tempDir } from "../helpers/server.ts";

const CLIENT = (address: string) => ({ address, port: 40000, passed: true, allowed: true });

test("a bug inside one session (an answer it did not ask for) fails that session alone: BUG with the stack, 421 4.3.0, and the others go on", async () => {
  const config = loadConfig({ MXSCREEN_SPOOL_DIR: tempDir(), MXSCREEN_HOSTNAME: "mx.test.example", MXSCREEN_DNS: "127.0.0.1:9" }, {
    hostname: "mx.test.example",
    cpus: 1,
    openFiles: 1024,
  });
  const posted: FromRunner[] = [];
  const runner = new SessionRunner(runnerConfig(config, false), (message) => posted.push(message), 1);
  runner.handle({ t: "open", id: 1, client: CLIENT("192.0.2.1"), gate: { dnsbl: [] } });
  runner.handle({ t: "open", id: 2, client: CLIENT("192.0.2.2"), gate: { dnsbl: [] } });
  // No RCPT is waiting for the store: the core's invariant throws, as a bug in the glue would make it.
  runner.handle({ t: "greylisted", id: 1, verdict: "pass" });
  const forOne = posted.filter((m) => "id" in m && m.id === 1);
  const bug = forOne.find((m) => m.t === "log");
  assert.ok(bug && bug.t === "log" && bug.entry.event === "BUG", JSON.stringify(forOne));
  assert.match(String(bug.entry.reason), /greylisted\(\) called in state greeted/);
  assert.match(String(bug.entry.stack), /session/);
  assert.ok(forOne.some((m) => m.t === "write" && /^421 4\.3\.0 /.test(m.text)));
  assert.ok(forOne.some((m) => m.t === "end" && m.facts === undefined));
  runner.handle({ t: "data", id: 1, bytes: new TextEncoder().encode("NOOP\r\n") });
  runner.handle({ t: "data", id: 2, bytes: new TextEncoder().encode("NOOP\r\n") });
  assert.equal(posted.filter((m) => m.t === "write" && m.id === 1).length, 1, "the failed session is gone");
  assert.ok(posted.some((m) => m.t === "write" && m.id === 2 && m.text === "250 2.0.0 Ok\r\n"), "the other session goes on");
  runner.handle({ t: "gone", id: 2 });
});
