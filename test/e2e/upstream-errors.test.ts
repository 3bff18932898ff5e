import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { onCleanup, test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { freePort, type RunningServer, startServer } from "../helpers/server.ts";

const MODES = [
  { name: "inline", workers: "0" },
  { name: "workers", workers: "2" },
];

/** An upstream MTA that answers MAIL late, and goes on answering after we hung up, as real MTAs do. */
async function lateUpstream(delayMs: number): Promise<{ port: number; sessions: number }> {
  const state = { port: 0, sessions: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    state.sessions++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.write("220 late.example ESMTP\r\n");
    let buffered = "";
    socket.on("data", (bytes: Buffer) => {
      buffered += bytes.toString("latin1");
      let end: number;
      while ((end = buffered.indexOf("\r\n")) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const answer = (text: string) => setTimeout(() => !socket.destroyed && socket.write(text), delayMs);
        if (/^EHLO/i.test(line)) socket.write("250-late.example\r\n250 PIPELINING\r\n");
        else if (/^QUIT/i.test(line)) answer("221 bye\r\n");
        else answer("250 2.0.0 Ok\r\n");
      }
    });
  });
  state.port = await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
  onCleanup(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return state;
}

function assertAlive(server: RunningServer): void {
  assert.equal(server.process.exitCode, null, `mxscreen exited: ${server.stderr.join("")}`);
  assert.doesNotMatch(server.stderr.join(""), /Uncaught|called in state/);
}

for (const mode of MODES) {
  test(`upstream refused, ${mode.name}: MAIL gets 451 4.4.1, the process stays up, and a session beside it is not failed`, async () => {
    const server = await startServer({
      MXSCREEN_ALLOW: "127.0.0.0/8",
      MXSCREEN_WORKERS: mode.workers,
      MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${await freePort()}`,
    });
    const bystander = await RawClient.greeted(server.port, "127.0.22.1");
    await bystander.command("EHLO bystander.example.net", /^250 /m);
    for (const source of ["127.0.22.2", "127.0.22.3"]) {
      const c = await RawClient.greeted(server.port, source);
      await c.command("EHLO client.example.net", /^250 /m);
      assert.match(await c.command("MAIL FROM:<sender@example.net>", /^\d{3} /m), /^451 4\.4\.1 /m);
      await server.waitForLine(
        new RegExp(`event=UPSTREAM-FAILED client=${source.replace(/\./g, "\\.")}:\\d+ reason="cannot connect to 127\\.0\\.0\\.1:\\d+`),
      );
      await c.command("QUIT", /^221 /m);
    }
    assertAlive(server);
    assert.match(await bystander.command("NOOP", /^\d{3} /m), /^250 /m);
    assert.match(await bystander.command("MAIL FROM:<sender@example.net>", /^\d{3} /m), /^451 4\.4\.1 /m);
    assert.equal(server.lines.filter((line) => /WORKER-FAILED|BUG/.test(line)).length, 0, server.lines.join("\n"));
  }, { timeoutMs: 30_000 });

  test(
    `a client hanging up while mxscreen waits for the upstream, ${mode.name}: the late answer is dropped and the process stays up`,
    async () => {
      const upstream = await lateUpstream(300);
      const server = await startServer({
        MXSCREEN_ALLOW: "127.0.0.0/8",
        MXSCREEN_WORKERS: mode.workers,
        MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${upstream.port}`,
      });
      for (const source of ["127.0.22.4", "127.0.22.5"]) {
        const c = await RawClient.greeted(server.port, source);
        await c.command("EHLO client.example.net", /^250 /m);
        c.write("MAIL FROM:<sender@example.net>\r\n");
        await new Promise((resolve) => setTimeout(resolve, 50));
        c.socket.destroy();
      }
      await new Promise((resolve) => setTimeout(resolve, 800));
      assertAlive(server);
      const c = await RawClient.greeted(server.port, "127.0.22.6");
      await c.command("EHLO client.example.net", /^250 /m);
      assert.match(await c.command("MAIL FROM:<sender@example.net>", /^\d{3} /m), /^250 /m);
      assert.equal(upstream.sessions, 3);
      assert.equal(server.lines.filter((line) => /WORKER-FAILED|BUG/.test(line)).length, 0, server.lines.join("\n"));
    },
    { timeoutMs: 30_000 },
  );
}
