import { RawClient } from "./smtp-client.ts";
import type { RunningServer } from "./server.ts";

/** What a client from `source` is told first: "554 " (refused) or "220-" (greet wait) or "220 ". */
export async function firstWords(server: RunningServer, source: string): Promise<string> {
  const c = await RawClient.open(server.port, source);
  await c.until(/^(554 |220)/, 3000);
  c.close();
  return c.text.slice(0, 4);
}

/** Polls until `source` gets `expected` from `server`; returns how long it took. */
export async function becomes(server: RunningServer, source: string, expected: string, withinMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const got = await firstWords(server, source);
    if (got === expected) return Date.now() - started;
    if (Date.now() - started > withinMs) {
      throw new Error(
        `${source} still gets ${JSON.stringify(got)} from ${server.port} after ${withinMs} ms, not ${JSON.stringify(expected)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An early talker from `source`: it is disconnected and banned. */
export async function pregreet(server: RunningServer, source: string): Promise<void> {
  const bot = await RawClient.open(server.port, source);
  await bot.until(/^220-/);
  bot.write("EHLO bot\r\n");
  await bot.waitClosed();
}

/** A harvester from `source`: three unknown recipients at elsewhere.example, each refused with 554 5.7.1, then QUIT. */
export async function guessRecipients(server: RunningServer, source: string): Promise<void> {
  const c = await RawClient.greeted(server.port, source);
  await c.command("HELO bot.example", /^250 /);
  await c.command("MAIL FROM:<a@example.net>", /^250 /);
  for (let i = 1; i <= 3; i++) await c.command(`RCPT TO:<guess${i}@elsewhere.example>`, /^554 5\.7\.1 /);
  await c.command("QUIT", /^221 /);
  await c.waitClosed();
}

/**
 * Opens a connection from `source` every 20 ms until `stop()` and times each teaser: a node
 * whose event loop is held (a replica's sync() in native code) answers late. `stop()` resolves
 * to the waits, in ms.
 */
export function probeTeasers(server: RunningServer, source: string): { stop(): Promise<number[]> } {
  const waits: number[] = [];
  let probing = true;
  const done = (async () => {
    while (probing) {
      const started = performance.now();
      const client = await RawClient.open(server.port, source);
      await client.until(/^220-/m);
      waits.push(performance.now() - started);
      client.close();
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      probing = false;
      await done;
      return waits;
    },
  };
}
