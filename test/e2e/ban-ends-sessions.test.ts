import assert from "node:assert/strict";
import { runtimeName } from "../../src/net/runtime/which-runtime.ts";
import { test } from "../harness.ts";
import { firstWords } from "../helpers/screen-probe.ts";
import { startServer } from "../helpers/server.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startSqld } from "../helpers/sqld.ts";

const here = runtimeName().split(" ")[0] as "deno" | "bun";
const other = here === "deno" ? "bun" : "deno";
const BANNED_LIVE = /421 4\.7\.1 [^ ]+ Service unavailable; client banned by policy, closing connection\r\n$/;

/** Opens a session from `source` and says HELO: a client holding a connection open. */
async function session(port: number, source: string): Promise<RawClient> {
  const c = await RawClient.greeted(port, source);
  await c.command("HELO client.example.net", /^250 /);
  return c;
}

/** Waits for the 421 4.7.1 and the close; returns how long after `since` it came. */
async function endedByBan(c: RawClient, since: number): Promise<number> {
  await c.until(BANNED_LIVE, 3_000);
  await c.waitClosed(2_000);
  return Date.now() - since;
}

test(
  `a ban made on a ${here} node (one address, then a /24) ends the sessions it covers on that node (inline) and on a ${other} node (a worker), and a client in the greet wait, within the follow interval`,
  async () => {
    const sqld = await startSqld();
    const token = "ban-ends-token-0123456789";
    // Following at 250 ms even when idle, and no nudge (B has no admin API): the bound the ends are held to.
    const env = {
      MXSCREEN_DB_URL: sqld.url,
      MXSCREEN_GREET_WAIT: "1500ms",
      MXSCREEN_FOLLOW_IDLE_INTERVAL: "250ms",
      MXSCREEN_ADMIN_TOKEN: token,
    };
    const a = await startServer({ ...env, MXSCREEN_NODE: `a-${here}`, MXSCREEN_WORKERS: "0" }, { admin: true });
    const b = await startServer({ ...env, MXSCREEN_NODE: `b-${other}`, MXSCREEN_WORKERS: "1" }, { runtime: other });
    const ban = async (address: string, reason: string) => {
      const added = await fetch(`${a.admin}/api/bans`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ address, reason }),
      });
      assert.equal(added.status, 201);
      await added.body?.cancel();
    };
    const [onA, onB, bystander, inSession] = await Promise.all([
      session(a.port, "127.0.13.1"),
      session(b.port, "127.0.13.1"),
      session(b.port, "127.0.13.2"),
      session(a.port, "127.0.14.5"),
    ]);

    const banned = Date.now();
    await ban("127.0.13.1", "api");
    const [tookA, tookB] = await Promise.all([endedByBan(onA, banned), endedByBan(onB, banned)]);
    assert.ok(
      tookA < 1_000 && tookB < 1_000,
      `ended in ${tookA} ms on the node that banned and ${tookB} ms on the other (following every 250 ms)`,
    );
    await b.waitForLine(
      /event=BANNED client=127\.0\.13\.1:\d+ ban=127\.0\.13\.1\/32 reason=api by=a-\w+ ended=session helo=client\.example\.net .*action=close$/,
    );
    await a.waitForLine(/event=BANNED client=127\.0\.13\.1:\d+ .*ended=session .*action=close$/);
    await bystander.command("NOOP", /^250 /);

    // A /24: a session on A, and a client still in B's greet wait.
    const waiting = await RawClient.open(b.port, "127.0.14.6");
    await waiting.until(/^220-/);
    const wide = Date.now();
    await ban("127.0.14.0/24", "snowshoe");
    const [tookSession, tookWaiting] = await Promise.all([endedByBan(inSession, wide), endedByBan(waiting, wide)]);
    assert.ok(tookSession < 1_000 && tookWaiting < 1_000, `ended ${tookSession} and ${tookWaiting} ms after the ban`);
    assert.doesNotMatch(waiting.text, /^220 /m, "no final 220 for the client that was waiting");
    await b.waitForLine(
      /event=BANNED client=127\.0\.14\.6:\d+ .*ban=127\.0\.14\.0\/24 reason=snowshoe by=a-\w+ ended=greet-wait .*action=close$/,
    );
    await bystander.command("QUIT", /^221 /);
  },
  { timeoutMs: 60_000 },
);

test(
  "a session's own verdict bans its address and ends the address's other session; with MXSCREEN_BAN_ENDS_SESSIONS=false the other goes on",
  async () => {
    const env = { MXSCREEN_GREET_WAIT: "300ms", MXSCREEN_ACCEPT_DOMAINS: "example.org", MXSCREEN_MAX_BAD_RCPT: "1" };
    const harvest = async (c: RawClient) => {
      await c.command("MAIL FROM:<a@example.net>", /^250 /);
      await c.command("RCPT TO:<x@elsewhere.example>", /^554 /);
      await c.command("RCPT TO:<y@elsewhere.example>", /^421 /);
    };
    for (const ends of [true, false]) {
      const node = await startServer({ ...env, MXSCREEN_BAN_ENDS_SESSIONS: String(ends) });
      const [held, bot] = await Promise.all([session(node.port, "127.0.15.1"), session(node.port, "127.0.15.1")]);
      await harvest(bot);
      if (ends) {
        await endedByBan(held, Date.now());
        await node.waitForLine(/event=BANNED client=127\.0\.15\.1:\d+ .*reason=DICTIONARY .*ended=session .*action=close$/);
      } else {
        await held.command("NOOP", /^250 /);
        await held.command("QUIT", /^221 /);
      }
      assert.equal(await firstWords(node, "127.0.15.1"), "554 ", "the ban itself holds either way");
      await node.stop();
    }
  },
  { timeoutMs: 40_000 },
);
