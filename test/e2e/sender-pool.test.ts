import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { eventually } from "../helpers/eventually.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer } from "../helpers/server.ts";

test(
  "a client that waited out the greeting is passed at once: its next connection seconds later is greeted at once; a failed session takes the pass back",
  async () => {
    const server = await startServer({ MXSCREEN_GREET_WAIT: "1500ms" });
    const first = await RawClient.greeted(server.port, "127.0.23.1");
    await first.command("EHLO pool.example.net", /^250 /m);
    const second = await RawClient.open(server.port, "127.0.23.1");
    await second.until(/^220 /m, 1_000);
    assert.doesNotMatch(second.text, /^220-/, "no greet wait for the pool's second connection");
    assert.ok(second.arrival(/^220 /m)! < 1_000);
    await second.command("QUIT", /^221 /m);
    // A bare LF in a command: the bare-newline check closes the session, and the pass is taken back.
    first.write("NOOP\n");
    await first.waitClosed();
    await server.waitForLine(/event=BARE-LF client=127\.0\.23\.1:\d+/);
    await eventually("the greet wait again", async () => {
      const third = await RawClient.open(server.port, "127.0.23.1");
      await third.until(/^220[- ]/m);
      third.socket.destroy();
      return /^220-/.test(third.text);
    });
  },
  { timeoutMs: 30_000 },
);
