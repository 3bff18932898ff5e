import assert from "node:assert/strict";
import { batchedLines } from "../../src/log/batched-lines.ts";
import { test } from "../harness.ts";

/** A sink whose turns of the event loop end when the test says (`end`), and what it wrote. */
function recorded() {
  const writes: string[] = [];
  const queued: (() => void)[] = [];
  const sink = batchedLines((text) => writes.push(text), (run) => void queued.push(run));
  return { writes, sink, end: () => queued.splice(0).forEach((run) => run()) };
}

test("the lines of one turn are written together, in order, once the turn ends", () => {
  const { writes, sink, end } = recorded();
  sink.line("event=CONNECT client=192.0.2.1:1");
  sink.line("event=PREGREET client=192.0.2.1:1");
  sink.line("event=DISCONNECT client=192.0.2.1:1");
  assert.deepEqual(writes, []);
  end();
  assert.deepEqual(writes, ["event=CONNECT client=192.0.2.1:1\nevent=PREGREET client=192.0.2.1:1\nevent=DISCONNECT client=192.0.2.1:1"]);
  sink.line("event=CONNECT client=192.0.2.2:1");
  end();
  end();
  assert.deepEqual(writes.slice(1), ["event=CONNECT client=192.0.2.2:1"]);
});

test("flush writes what is queued at once (the exit), and a turn with nothing queued writes nothing", () => {
  const { writes, sink, end } = recorded();
  sink.line("msg=stopping");
  sink.line("msg=stopped");
  sink.flush();
  assert.deepEqual(writes, ["msg=stopping\nmsg=stopped"]);
  end();
  sink.flush();
  assert.equal(writes.length, 1);
});

test("a turn that logs a great deal writes as it goes, every line once and in order", () => {
  const { writes, sink, end } = recorded();
  const sent = Array.from({ length: 5_000 }, (_, i) => `event=CONNECT client=192.0.2.1:${i} ${"x".repeat(40)}`);
  for (const line of sent) sink.line(line);
  assert.ok(writes.length >= 3, `${writes.length} writes before the turn ended`);
  assert.ok(writes.every((text) => text.length <= 64 * 1024 + 100));
  end();
  assert.deepEqual(writes.join("\n").split("\n"), sent);
});
