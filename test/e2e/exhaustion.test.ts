import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { onCleanup, test } from "../harness.ts";
import { startUdpDelayProxy } from "../helpers/delay-proxy.ts";
import { startDnsmasq } from "../helpers/dnsmasq.ts";
import { eventually } from "../helpers/eventually.ts";
import { HostileUpstream } from "../helpers/hostile-upstream.ts";
import { type RunningServer, RUNTIME, runtimeCommand, startServer } from "../helpers/server.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { spooled } from "../helpers/spooled.ts";
import { swaks } from "../helpers/swaks.ts";

/**
 * Issue 12, "Exhaustion": crowds of slow clients, a client streaming while its session waits,
 * and kill -9 in the middle of a message. Each is bounded in count and time and cleaned up.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- A crowd of slow clients, in a child process of the test (this file, run as a script) ----

/** What one crowd process is told: who to be, how many, and how to misbehave. */
interface CrowdPlan {
  readonly port: number;
  readonly sources: readonly string[];
  readonly perSource: number;
  /** Every `silentEvery`-th client stays silent after the greeting, the others drip; 0: all drip. */
  readonly silentEvery: number;
  /** Each dripper sends one byte of an endless command line this often. */
  readonly dripMs: number;
  /** The process exits by itself after this long, whatever happens to the test. */
  readonly lifeMs: number;
}

interface CrowdCounts {
  opened: number;
  /** Heard the `220-` teaser: the greet wait began. */
  teased: number;
  greeted: number;
  /** Refused at connect (a 4xx before any 220). */
  refused: number;
  /** Told 421 after the greeting (a timeout), then closed. */
  timedOut: number;
  closed: number;
  failed: number;
}

/**
 * Connections per crowd process not yet answered. A connect completes in the kernel before the
 * server accepts it; past the listen backlog the kernel drops the handshake's last ACK, and a
 * client that waits in silence is never told. So a slot frees on the server's first byte.
 */
const UNANSWERED_AT_ONCE = 100;
const ANSWER_WAIT_MS = 10_000;
const DRIP_TICK_MS = 100;

async function crowd(plan: CrowdPlan): Promise<void> {
  setTimeout(() => process.exit(0), plan.lifeMs);
  // The test that started us is gone when our stdin closes.
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
  const counts: CrowdCounts = { opened: 0, teased: 0, greeted: 0, refused: 0, timedOut: 0, closed: 0, failed: 0 };
  const drippers: { socket: Socket; sent: number }[] = [];
  const report = () => console.log(JSON.stringify(counts));
  setInterval(report, 250);
  const line = "EHLO " + "x".repeat(10_000);
  let turn = 0;
  setInterval(() => {
    // Each tick drips to the next share of the drippers, so each gets a byte every dripMs.
    const share = Math.ceil(drippers.length / Math.max(1, plan.dripMs / DRIP_TICK_MS));
    for (let i = 0; i < share && drippers.length > 0; i++) {
      const dripper = drippers[turn++ % drippers.length];
      if (!dripper.socket.destroyed) dripper.socket.write(line[dripper.sent++ % line.length]);
    }
  }, DRIP_TICK_MS);
  const open = (index: number) =>
    new Promise<void>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port: plan.port, localAddress: plan.sources[Math.floor(index / plan.perSource)] });
      let heard = "";
      let teased = false;
      let greeted = false;
      socket.setEncoding("latin1");
      const unanswered = setTimeout(resolve, ANSWER_WAIT_MS);
      socket.on("connect", () => counts.opened++);
      socket.on("data", (text: string) => {
        heard = (heard + text).slice(-200);
        if (!teased && /^220[- ]/m.test(heard)) {
          teased = true;
          counts.teased++;
        }
        if (/^\d{3}[- ]/m.test(heard)) {
          clearTimeout(unanswered);
          resolve();
        }
        if (!greeted && /^220 /m.test(heard)) {
          greeted = true;
          counts.greeted++;
          heard = "";
          if (plan.silentEvery === 0 || index % plan.silentEvery !== 0) drippers.push({ socket, sent: 0 });
        } else if (!greeted && /^4\d\d /m.test(heard)) {
          counts.refused++;
        } else if (greeted && /^421 /m.test(heard)) {
          counts.timedOut++;
          heard = "";
        }
      });
      socket.on("error", () => {
        counts.failed++;
        resolve();
      });
      socket.on("close", () => {
        counts.closed++;
        resolve();
      });
    });
  const total = plan.sources.length * plan.perSource;
  let next = 0;
  await Promise.all(Array.from({ length: UNANSWERED_AT_ONCE }, async () => {
    while (next < total) await open(next++);
  }));
  report();
}

if (import.meta.main) await crowd(JSON.parse(process.argv[process.argv.length - 1]) as CrowdPlan);

/** A crowd process, its latest counts, and a way to end it by its PID. */
interface Crowd {
  readonly counts: () => CrowdCounts;
  stop(): Promise<void>;
}

function startCrowd(plan: CrowdPlan): Crowd {
  const run = runtimeCommand(RUNTIME, fileURLToPath(import.meta.url));
  // Each crowd process holds its own sockets: the open-files limit is per process.
  const child: ChildProcess = spawn(
    "/bin/sh",
    ["-c", `ulimit -n 20000 && exec "$0" "$@"`, run.command, ...run.args, JSON.stringify(plan)],
    {
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  let latest: CrowdCounts = { opened: 0, teased: 0, greeted: 0, refused: 0, timedOut: 0, closed: 0, failed: 0 };
  let partial = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop()!;
    const last = lines.filter((l) => l.startsWith("{")).at(-1);
    if (last) latest = JSON.parse(last);
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => stderr = (stderr + chunk).slice(-2000));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const crowd: Crowd = {
    counts: () => ({ ...latest }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGKILL");
      await exited;
      if (stderr.trim() !== "" && !/Killed/.test(stderr)) console.log(`crowd process said: ${stderr.trim()}`);
    },
  };
  onCleanup(() => crowd.stop());
  return crowd;
}

/** Waits until the crowds' summed counts satisfy `done`; fails with the counts reached. */
async function crowdsReach(
  crowds: readonly Crowd[],
  what: string,
  done: (counts: CrowdCounts) => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done(total(crowds))) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}; the crowd reached ${JSON.stringify(total(crowds))}`);
    await sleep(100);
  }
}

function total(crowds: readonly Crowd[]): CrowdCounts {
  const sum: CrowdCounts = { opened: 0, teased: 0, greeted: 0, refused: 0, timedOut: 0, closed: 0, failed: 0 };
  for (const c of crowds) for (const [key, value] of Object.entries(c.counts())) sum[key as keyof CrowdCounts] += value;
  return sum;
}

/** `count` source addresses, each in a /24 of its own under 127.`second`. */
function sources(second: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `127.${second}.${i}.1`);
}

function deliver(port: number, source: string, extra: string[] = []) {
  return swaks([
    "--server",
    `127.0.0.1:${port}`,
    "--local-interface",
    source,
    "--helo",
    "legit.example.net",
    "--from",
    "sender@example.net",
    "--to",
    "someone@example.org",
    ...extra,
  ]);
}

test("15,000 slowloris clients (silent or dripping after the greeting) while swaks delivers in under 5 s", async () => {
  const clients = 15_000;
  const perSource = 100;
  const server = await startServer({
    MXSCREEN_MAX_CONN_PER_CLIENT: String(perSource * 2),
    MXSCREEN_MAX_CONN_PER_PREFIX: String(perSource * 2),
    MXSCREEN_SHUTDOWN_TIMEOUT: "2s",
  }, { openFiles: 20_000 });
  const all = sources(80, clients / perSource);
  const processes = 3;
  const share = all.length / processes;
  const crowds = Array.from(
    { length: processes },
    (_, i) =>
      startCrowd({
        port: server.port,
        sources: all.slice(i * share, (i + 1) * share),
        perSource,
        silentEvery: 3,
        dripMs: 3_000,
        lifeMs: 120_000,
      }),
  );
  await crowdsReach(crowds, `all ${clients} slow clients greeted`, (counts) => counts.greeted >= clients, 60_000);
  const started = Date.now();
  const result = await deliver(server.port, "127.9.0.1");
  const took = Date.now() - started;
  const crowdNow = total(crowds);
  assert.equal(result.code, 0, result.output);
  assert.ok(took < 5_000, `swaks took ${took} ms beside ${crowdNow.greeted - crowdNow.closed} slow clients`);
  assert.ok(
    crowdNow.opened - crowdNow.closed >= clients,
    `the slow clients were still there while swaks delivered: ${JSON.stringify(crowdNow)}`,
  );
  await Promise.all(crowds.map((c) => c.stop()));
}, { timeoutMs: 120_000, alone: true });

test(
  "1,000 drippers that fill MXSCREEN_MAX_CONNECTIONS are timed out by MXSCREEN_COMMAND_TIMEOUT, and then a legitimate client delivers",
  async () => {
    const drippers = 1_000;
    const server = await startServer({
      MXSCREEN_MAX_CONNECTIONS: String(drippers),
      MXSCREEN_MAX_CONN_PER_CLIENT: "100",
      MXSCREEN_MAX_CONN_PER_PREFIX: "100",
      MXSCREEN_COMMAND_TIMEOUT: "5s",
      MXSCREEN_GREET_WAIT: "300ms",
      MXSCREEN_SHUTDOWN_TIMEOUT: "2s",
    });
    const crowd = startCrowd({
      port: server.port,
      sources: sources(81, 20),
      perSource: drippers / 20,
      silentEvery: 0,
      dripMs: 3_000,
      lifeMs: 60_000,
    });
    await crowdsReach([crowd], `all ${drippers} drippers greeted`, (counts) => counts.greeted >= drippers, 30_000);
    const greetedAt = Date.now();
    // The lock-out exists: with every slot taken, a newcomer is turned away.
    const turnedAway = await RawClient.open(server.port, "127.9.1.1");
    await turnedAway.until(/^421 4\.3\.2 /m);
    // Past the command timeout, counted from the last greeting or from a line's first drip
    // (3 s later), plus the session's one-second tick and a margin.
    await sleep(Math.max(0, greetedAt + 3_000 + 5_000 + 1_000 + 3_000 - Date.now()));
    const counts = crowd.counts();
    const result = await deliver(server.port, "127.9.1.2");
    assert.equal(result.code, 0, `a legitimate client after the command timeout (drippers: ${JSON.stringify(counts)}): ${result.output}`);
    assert.ok(counts.timedOut >= drippers * 0.99, `drippers told 421 by the command timeout: ${JSON.stringify(counts)}`);
    await crowd.stop();
  },
  { timeoutMs: 90_000, alone: true },
);

/** The resident set of a process in bytes, from /proc (Linux). */
function rss(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!kb) throw new Error(`no VmRSS in /proc/${pid}/status: is the process still there?`);
  return Number(kb[1]) * 1024;
}

const MiB = 1024 * 1024;
const STREAM_LIMIT = 1.5 * 1024 * MiB;
const STREAM_MS = 10_000;
const RSS_ALLOWANCE = 64 * MiB;

/**
 * Writes `chunk` to `socket` as fast as it will take it, for `ms` or `limit` bytes, or until
 * `stop()`: no more than WINDOW unacknowledged, so it is the server's reading that sets the pace.
 */
async function stream(socket: Socket, chunk: Uint8Array, limit: number, ms: number, stop: () => boolean): Promise<number> {
  const WINDOW = 4 * MiB;
  const deadline = Date.now() + ms;
  let sent = 0;
  let unacknowledged = 0;
  let wake: (() => void) | undefined;
  while (sent < limit && Date.now() < deadline && !stop() && !socket.destroyed) {
    if (unacknowledged >= WINDOW) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
      continue;
    }
    unacknowledged += chunk.length;
    sent += chunk.length;
    socket.write(chunk, () => {
      unacknowledged -= chunk.length;
      wake?.();
    });
    if (sent % (16 * MiB) < chunk.length) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return sent;
}

for (const workers of ["0", "2"]) {
  test(
    `MXSCREEN_WORKERS=${workers}: a 1.5 GB stream during a slow sender-domain lookup keeps mxscreen under 64 MiB above its start`,
    async () => {
      const dns = await startDnsmasq();
      // Longer than the stream: the session is waiting for its answer all the while.
      const slow = await startUdpDelayProxy(dns.address, STREAM_MS + 2_000);
      const server = await startServer({
        MXSCREEN_WORKERS: workers,
        MXSCREEN_DNS: slow.address,
        MXSCREEN_DNS_TIMEOUT: "30s",
        MXSCREEN_GREET_WAIT: "300ms",
        MXSCREEN_SHUTDOWN_TIMEOUT: "2s",
      });
      const pid = server.process.pid!;
      const client = await RawClient.greeted(server.port, "127.0.90.1");
      await client.command("EHLO streamer.example.net", /^250 .*\r\n/m);
      client.write("MAIL FROM:<streamer@example.net>\r\n");
      // Unless the lookup has really started, the session is not waiting and the test proves nothing.
      await eventually("mxscreen asked the resolver about example.net", () => slow.questions().includes("example.net"), 5_000);
      const start = rss(pid);
      let peak = start;
      const sampler = setInterval(() => peak = Math.max(peak, rss(pid)), 100);
      onCleanup(() => clearInterval(sampler));
      const chunk = new TextEncoder().encode(("X-Filler: " + "y".repeat(88) + "\r\n").repeat(640));
      const sent = await stream(client.socket, chunk, STREAM_LIMIT, STREAM_MS, () => peak - start > RSS_ALLOWANCE);
      clearInterval(sampler);
      peak = Math.max(peak, rss(pid));
      client.socket.destroy();
      assert.ok(
        peak - start <= RSS_ALLOWANCE,
        `mxscreen grew by ${Math.round((peak - start) / MiB)} MiB (from ${Math.round(start / MiB)} MiB) while one client sent ${
          Math.round(sent / MiB)
        } MiB during its sender-domain lookup`,
      );
    },
    { timeoutMs: 60_000 },
  );
}

test(
  "kill -9 during DATA leaves nothing in spool/new/, and after a restart on the same directory the next message is spooled",
  async () => {
    const first = await startServer({ MXSCREEN_GREET_WAIT: "300ms" });
    await halfAMessage(first.port, "127.0.92.1", "partial-before-kill");
    await sleep(500);
    await kill9(first);
    assert.deepEqual(readdirSync(join(first.spoolDir, "new")), [], "spool/new/ after kill -9 mid-DATA");
    const second = await startServer({ MXSCREEN_GREET_WAIT: "300ms" }, { dir: first.dir });
    const result = await deliver(second.port, "127.0.92.2", ["--header", "Subject: after-restart"]);
    assert.equal(result.code, 0, result.output);
    const messages = spooled(second.spoolDir);
    assert.equal(messages.length, 1, `spool/new/ holds ${messages.length} messages`);
    assert.match(messages[0], /Subject: after-restart/);
    assert.doesNotMatch(messages[0], /partial-before-kill/);
  },
  { timeoutMs: 60_000 },
);

test("kill -9 during a relayed DATA: the upstream saw part of the message, lost the connection and accepted nothing", async () => {
  const upstream = await HostileUpstream.start();
  const server = await startServer({ MXSCREEN_GREET_WAIT: "300ms", MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${upstream.port}` });
  const planned = upstream.plan("normal");
  await halfAMessage(server.port, "127.0.93.1", "relayed-partial");
  await eventually("the upstream received the start of the message", () => planned.received().includes("Subject: relayed-partial"), 5_000);
  await kill9(server);
  assert.ok(
    await Promise.race([planned.ended.then(() => true), sleep(5_000).then(() => false)]),
    "the upstream saw its connection end within 5 s",
  );
  assert.deepEqual(upstream.accepted.filter((m) => m.data.includes("relayed-partial")), [], "what the upstream accepted");
  assert.doesNotMatch(planned.received(), /\r\n\.\r\n/, "no end of data reached the upstream");
}, { timeoutMs: 60_000 });

/** A client that is inside DATA and has sent the start of a message (320 kB), but never its end. */
async function halfAMessage(port: number, source: string, subject: string): Promise<RawClient> {
  const client = await RawClient.greeted(port, source);
  await client.command("EHLO killed.example.net", /^250 .*\r\n/m);
  await client.command("MAIL FROM:<killed@example.net>", /^250 .*\r\n/m);
  await client.command("RCPT TO:<someone@example.org>", /^250 .*\r\n/m);
  await client.command("DATA", /^354 .*\r\n/m);
  client.write(`Subject: ${subject}\r\n\r\n` + "half a message\r\n".repeat(20_000));
  return client;
}

async function kill9(server: RunningServer): Promise<void> {
  const exited = new Promise<void>((resolve) => server.process.once("exit", () => resolve()));
  process.kill(server.process.pid!, "SIGKILL");
  await exited;
}
