import assert from "node:assert/strict";
import { loadConfig } from "../../src/config/config.ts";
import type { SessionFacts } from "../../src/smtp/types.ts";
import { PacedWriter } from "../../src/gate/paced-writer.ts";
import type { ClientSocket } from "../../src/net/types.ts";
import { createPool } from "../../workers/pool.ts";
import { runnerConfig } from "../../workers/runner-config.ts";
import type { SessionSink } from "../../workers/types.ts";
import { test } from "../harness.ts";
import { eventually } from "../helpers/eventually.ts";
import { tempDir } from "../helpers/server.ts";

/** A session's side of the accept loop, recording what the pool tells it. */
function recorder() {
  const seen = { written: "", failed: undefined as string | undefined, ended: undefined as SessionFacts | undefined };
  const sink: SessionSink = {
    write: (text) => void (seen.written += text),
    close: () => {},
    starttls: () => {},
    pause: () => {},
    resume: () => {},
    log: () => {},
    greylist: () => Promise.resolve("pass"),
    end: (facts) => void (seen.ended = facts),
    failed: (reason) => void (seen.failed = reason),
  };
  return { seen, sink };
}

const CLIENT = (address: string) => ({ address, port: 40000, passed: true, allowed: false });

test("a worker that dies fails only its own sessions, and the next sessions run on a new worker", async () => {
  const config = loadConfig({ MXSCREEN_SPOOL_DIR: tempDir(), MXSCREEN_HOSTNAME: "mx.test.example", MXSCREEN_DNS: "127.0.0.1:9" }, {
    hostname: "mx.test.example",
    cpus: 1,
    openFiles: 1024,
  });
  const failures: [string, number][] = [];
  const pool = createPool(runnerConfig(config, false), 2, {
    workerUrl: new URL("../helpers/failing-session-worker.ts", import.meta.url),
    onWorkerFailed: (reason, sessions) => failures.push([reason, sessions]),
  });
  try {
    // Two workers: the pool puts each new session on the worker with fewest, so these two part.
    const healthy = recorder();
    const doomed = recorder();
    const survivor = pool.open(CLIENT("192.0.2.10"), { dnsbl: [] }, undefined, healthy.sink);
    pool.open(CLIENT("192.0.2.66"), { dnsbl: [] }, undefined, doomed.sink);
    await eventually("the session on the dead worker is failed", () => doomed.seen.failed !== undefined);
    assert.match(doomed.seen.failed!, /simulated bug in a session worker/);
    assert.deepEqual(failures.map(([, sessions]) => sessions), [1]);
    survivor.data(new TextEncoder().encode("EHLO client.example.net\r\n"));
    await eventually("the other worker's session goes on", () => /^250 /m.test(healthy.seen.written));
    assert.equal(healthy.seen.failed, undefined);

    const next = recorder();
    const handle = pool.open(CLIENT("192.0.2.11"), { dnsbl: [] }, undefined, next.sink);
    handle.data(new TextEncoder().encode("EHLO client.example.net\r\n"));
    await eventually("the new worker answers EHLO", () => /^250 /m.test(next.seen.written));
    assert.match(next.seen.written, /^250-mx\.test\.example/m);
    handle.data(new TextEncoder().encode("QUIT\r\n"));
    await eventually("the session ends", () => next.seen.ended !== undefined);
    assert.match(next.seen.written, /^221 /m);
    assert.equal(next.seen.failed, undefined);
  } finally {
    await pool.shutdown(1_000);
  }
}, { timeoutMs: 20_000 });

test(
  "stutter across the thread: a command read before the worker's paced EHLO reply reached the accept loop is early (inline and in a worker)",
  async () => {
    const config = loadConfig({
      MXSCREEN_SPOOL_DIR: tempDir(),
      MXSCREEN_HOSTNAME: "mx.test.example",
      MXSCREEN_DNS: "127.0.0.1:9",
      MXSCREEN_STUTTER: "true",
      MXSCREEN_STUTTER_DELAY: "300ms",
    }, { hostname: "mx.test.example", cpus: 1, openFiles: 1024 });
    for (const workers of [0, 1]) {
      const pool = createPool(runnerConfig(config, false), workers);
      try {
        let written = "";
        let ended: SessionFacts | undefined;
        // The accept loop's writer, as in screening: paced replies wait here, on this thread.
        const socket = { write: (text: string) => void (written += text) } as unknown as ClientSocket;
        const writer = new PacedWriter(socket);
        const { sink } = recorder();
        const handle = pool.open({ address: "192.0.2.12", port: 40000, passed: false, allowed: false }, { dnsbl: [] }, undefined, {
          ...sink,
          write: (text, pace) => writer.write(text, pace && { ms: pace.stutterMs, final: pace.final }),
          end: (facts) => void (ended = facts),
        });
        // Two reads in one turn of the loop: the worker cannot have answered the first yet.
        handle.data(new TextEncoder().encode("EHLO bot.example.net\r\n"), writer.finalsWritten);
        handle.data(new TextEncoder().encode("MAIL FROM:<a@example.net>\r\n"), writer.finalsWritten);
        await eventually(`workers=${workers}: the session ends`, () => ended !== undefined, 5_000);
        await eventually(`workers=${workers}: the refusal is written`, () => / closing\r\n$/.test(written), 5_000);
        assert.match(
          written,
          /^250-mx\.test\.example Hello bot\.example\.net \[192\.0\.2\.12\]\r\n(250-.*\r\n)*250 ENHANCEDSTATUSCODES\r\n554 5\.5\.0 mx\.test\.example Error: SMTP protocol synchronization; closing\r\n$/,
        );
        assert.deepEqual(ended!.findings.map((f) => [f.tag, f.evidence.command, f.evidence.before_final_line]), [[
          "PIPELINING",
          "EHLO",
          true,
        ]]);
      } finally {
        await pool.shutdown(1_000);
      }
    }
  },
  { timeoutMs: 20_000 },
);
