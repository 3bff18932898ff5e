import { test } from "../harness.ts";
import { startDnsmasq } from "../helpers/dnsmasq.ts";
import { type Fault, HostileUpstream, LATE_MS, type PlannedConnection, type Stage } from "../helpers/hostile-upstream.ts";
import { type RunningServer, startServer } from "../helpers/server.ts";
import { RawClient } from "../helpers/smtp-client.ts";

/**
 * The fault matrix of issue 12: an upstream that refuses, resets, closes, stalls or answers late
 * at each step of the relay, crossed with the client staying or hanging up there, against one
 * mxscreen per mode. Every cell: the process lives, a client still there gets a 4xx for the
 * command concerned (never a 250 the upstream did not give) and a bystander delivers meanwhile.
 */

const UPSTREAM_TIMEOUT_MS = 1_000;
const STAGES: readonly Stage[] = ["connect", "greeting", "ehlo", "xclient", "mail", "rcpt", "data", "dot"];
/** A connect is refused or never answered by the listener; later steps fail inside a connection. */
const FAULTS = (stage: Stage): readonly Fault[] =>
  stage === "connect" ? ["refuse", "reset", "close", "stall"] : ["reset", "close", "stall", "late"];
/** Index of the client's step that waits on each upstream stage: the first four are all behind MAIL. */
const CONCERNED: Record<Stage, number> = { connect: 0, greeting: 0, ehlo: 0, xclient: 0, handover: 0, mail: 0, rcpt: 1, data: 2, dot: 3 };
const CONCURRENT_CELLS = 4;

interface Cell {
  readonly stage: Stage;
  readonly fault: Fault;
  readonly hangsUp: boolean;
  readonly index: number;
}

/** A refused or never-answered connect is the listener's doing, not a connection's. */
const atListener = (cell: Cell) => cell.stage === "connect" && (cell.fault === "refuse" || cell.fault === "stall");

const label = (cell: Cell) => `${cell.fault} at ${cell.stage}, client ${cell.hangsUp ? "hangs up" : "stays"}`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or false after `ms`. */
function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), ms))])
    .finally(() => clearTimeout(timer));
}

/** One at a time: the hostile upstream hands out plans in the order connections arrive. */
class Turns {
  private last: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.last.then(fn);
    this.last = next.catch(() => {});
    return next;
  }
}

/** The mxscreen under test; started again when a cell killed it, so the cells after it still tell something. */
class Subject {
  server: RunningServer | undefined;
  /** Resolves when the current server has exited. */
  exited: Promise<void> = Promise.resolve();
  private starting: Promise<RunningServer> | undefined;
  constructor(private readonly env: Record<string, string>) {}

  get alive(): boolean {
    const child = this.server?.process;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  ready(): Promise<RunningServer> {
    if (this.alive) return Promise.resolve(this.server!);
    this.starting ??= startServer(this.env).then((server) => {
      this.server = server;
      this.exited = new Promise((resolve) => server.process.once("exit", () => resolve()));
      this.starting = undefined;
      return server;
    });
    return this.starting;
  }
}

/** What the process said that it must never say: an escaped exception, a BUG guard line, a dead worker. */
function noise(server: RunningServer, stderrFrom: number, linesFrom: number): string | undefined {
  const stderr = server.stderr.join("").slice(stderrFrom);
  const lines = server.lines.slice(linesFrom).filter((line) => /\bBUG\b|session worker died/.test(line));
  const said = [
    ...(/Uncaught|\bBUG\b|^error:/im.test(stderr) ? [excerpt(stderr)] : []),
    ...lines.map((line) => {
      const reason = /reason="((?:[^"\\]|\\.)*)"/.exec(line)?.[1].replace(/\\n/g, "\n").replace(/\\"/g, '"');
      return `${/msg="[^"]*"/.exec(line)?.[0] ?? line}${reason === undefined ? "" : ` reason: ${excerpt(reason)}`}`;
    }),
  ];
  return said.length === 0 ? undefined : said.join(" | ");
}

/** The error and where it was thrown, from a runtime's report of an uncaught error, for a one-line report. */
function excerpt(text: string): string {
  // deno colours its report even into a pipe; bun quotes source lines before the error.
  const lines = text.replace(/\x1b\[[0-9;]*m/g, "").split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const error = lines.findIndex((l) => /Uncaught|\bBUG\b|^error:|Error:/.test(l));
  if (error < 0) return lines.slice(0, 2).join(" / ").slice(0, 300);
  const at = lines.slice(error).find((l) => /^at /.test(l));
  return [lines[error], at].filter(Boolean).join(" ").slice(0, 300);
}

/** The next complete final reply line after `from`, or undefined when none came in time. */
async function nextReply(client: RawClient, from: number, timeoutMs: number): Promise<string | undefined> {
  try {
    const text = await client.until(/^\d{3} [^\n]*\n/m, timeoutMs, from);
    return /^\d{3} [^\r\n]*/m.exec(text.slice(from))![0];
  } catch {
    return undefined;
  }
}

/** What came after `from`, or that nothing did (and the last line before, which may explain why). */
function heard(client: RawClient, from: number): string {
  const text = client.text.slice(from).trim();
  if (text !== "") return JSON.stringify(text.slice(0, 200));
  const before = client.text.slice(0, from).trim().split("\n").at(-1) ?? "";
  return `${client.isClosed ? "the connection closed without a reply" : "nothing"}${
    before === "" ? "" : ` (last heard before it: ${JSON.stringify(before.slice(0, 120))})`
  }`;
}

const message = (marker: string) => `Subject: ${marker}\r\nMessage-ID: <${marker}@test.example>\r\n\r\nbody of ${marker}\r\n.\r\n`;

const STEPS = (
  marker: string,
) => [`MAIL FROM:<${marker}@example.net>\r\n`, "RCPT TO:<someone@example.org>\r\n", "DATA\r\n", message(marker)];

/** A session beside the cell's, delivering a message through a normally behaving upstream connection. */
class Bystander {
  private constructor(private readonly client: RawClient, private readonly marker: string) {}

  static async begin(port: number, source: string, marker: string, upstream: HostileUpstream, turns: Turns): Promise<Bystander> {
    const client = await RawClient.greeted(port, source);
    await client.command("EHLO bystander.example.net", /^250 .*\r\n/m);
    const [mail, rcpt] = STEPS(marker);
    const from = client.text.length;
    await turns.run(async () => {
      const planned = upstream.plan("normal");
      client.write(mail);
      if (await within(planned.taken, 5_000)) return;
      planned.withdraw();
      throw new Error(`the bystander's MAIL opened no upstream connection; it got ${heard(client, from)}`);
    });
    const problem = await expectReply(client, from, /^250 /, "the bystander's MAIL") ??
      await step(client, rcpt, /^250 /, "the bystander's RCPT");
    if (problem) throw new Error(problem);
    return new Bystander(client, marker);
  }

  /** DATA and the message, which the upstream must accept and the client hear 250 for. */
  async finish(upstream: HostileUpstream): Promise<string | undefined> {
    const [, , data, content] = STEPS(this.marker);
    const problem = await step(this.client, data, /^354 /, "the bystander's DATA") ??
      await step(this.client, content, /^250 /, "the bystander's message");
    if (problem) return problem;
    if (!upstream.accepted.some((m) => m.data.includes(this.marker))) {
      return "the bystander heard 250 for a message the upstream never accepted";
    }
    this.client.write("QUIT\r\n");
    return undefined;
  }
}

async function expectReply(client: RawClient, from: number, expected: RegExp, what: string): Promise<string | undefined> {
  const reply = await nextReply(client, from, 5_000);
  return reply !== undefined && expected.test(reply) ? undefined : `${what} got ${reply ?? heard(client, from)}`;
}

/** Sends `text` and checks the reply it gets; says what went wrong, if anything. */
function step(client: RawClient, text: string, expected: RegExp, what: string): Promise<string | undefined> {
  const from = client.text.length;
  client.write(text);
  return expectReply(client, from, expected, what);
}

/** One cell; resolves with what went wrong (empty: nothing) and whether the process misbehaved meanwhile. */
async function runCell(
  subject: Subject,
  upstream: HostileUpstream,
  turns: Turns,
  cell: Cell,
  network: string,
): Promise<{ problems: string[]; suspect: boolean }> {
  const server = await subject.ready();
  const stderrFrom = server.stderr.join("").length;
  const linesFrom = server.lines.length;
  const problems: string[] = [];
  const marker = `cell${cell.index}x${Date.now().toString(36)}`;
  let client: RawClient | undefined;
  const bystanders: Bystander[] = [];
  try {
    // The cell's client first, then two bystanders: with two workers, sessions going to the
    // least busy one, the second bystander shares the cell's worker and the first does not.
    client = await RawClient.greeted(server.port, `${network}.1`);
    for (const n of [2, 3]) bystanders.push(await Bystander.begin(server.port, `${network}.${n}`, `${marker}b${n}`, upstream, turns));
  } catch (error) {
    problems.push((error as Error).message);
  }
  try {
    const problem = client && await playCell(client, upstream, turns, cell, marker);
    if (problem) problems.push(problem);
  } catch (error) {
    problems.push(`the cell's client: ${(error as Error).message}`);
  }
  for (const bystander of bystanders) {
    const problem = await bystander.finish(upstream);
    if (problem) problems.push(problem);
  }
  // A process that stopped answering may not have been reaped yet: give its exit a moment to show.
  if (problems.length > 0 && server === subject.server) await within(subject.exited, 1_000);
  const died = server.process.exitCode !== null || server.process.signalCode !== null;
  const said = noise(server, stderrFrom, linesFrom);
  if (died) problems.unshift(`mxscreen exited (${server.process.exitCode ?? server.process.signalCode})${said ? `: ${said}` : ""}`);
  else if (said) problems.unshift(`mxscreen said: ${said}`);
  return { problems, suspect: died || said !== undefined };
}

async function playCell(
  client: RawClient,
  upstream: HostileUpstream,
  turns: Turns,
  cell: Cell,
  marker: string,
): Promise<string | undefined> {
  await client.command("EHLO faulty.example.net", /^250 .*\r\n/m);
  const steps = STEPS(marker);
  const concerned = CONCERNED[cell.stage];
  const listener = atListener(cell);
  let planned: PlannedConnection | undefined;
  let from = 0;
  // MAIL opens the upstream connection; nobody else may open one until it has taken its plan.
  const mailReply = await turns.run(async () => {
    if (listener) await (cell.fault === "refuse" ? upstream.refuse() : upstream.unanswered());
    else planned = upstream.plan({ stage: cell.stage, fault: cell.fault });
    try {
      from = client.text.length;
      client.write(steps[0]);
      if (planned) {
        if (await within(planned.taken, 5_000)) return undefined;
        planned.withdraw();
        return `MAIL opened no upstream connection; it got ${heard(client, from)}`;
      }
      if (cell.hangsUp) {
        client.socket.destroy();
        await sleep(cell.fault === "stall" ? UPSTREAM_TIMEOUT_MS + 500 : 300);
        return undefined;
      }
      return await nextReply(client, from, UPSTREAM_TIMEOUT_MS + 3_000) ?? heard(client, from);
    } finally {
      if (listener) await upstream.reopen();
    }
  });
  if (listener) {
    if (cell.hangsUp) return undefined;
    return /^4\d\d /.test(mailReply!) ? undefined : `MAIL got ${mailReply}, not a 4xx`;
  }
  if (mailReply !== undefined) return mailReply;
  for (let step = 0; step < 4; step++) {
    if (step > 0) {
      from = client.text.length;
      client.write(steps[step]);
    }
    const what = step === 3 ? "the final dot" : steps[step].trim().split(/[ :]/)[0];
    if (step === concerned && cell.hangsUp) {
      if (!await within(planned!.reached, 5_000)) return `the upstream never saw ${what}`;
      client.socket.destroy();
      // Long enough for the fault, a late answer and mxscreen's upstream timeout to play out.
      await within(planned!.ended, UPSTREAM_TIMEOUT_MS + LATE_MS + 500);
      return undefined;
    }
    const reply = await nextReply(client, from, UPSTREAM_TIMEOUT_MS + 3_000);
    if (reply === undefined) return `${what} got ${heard(client, from)}`;
    const positive = /^(250|354) /.test(reply);
    if (step === 3 && /^250 /.test(reply) && !upstream.accepted.some((m) => m.data.includes(marker))) {
      return `the final dot got ${reply}: a 250 for a message the upstream did not accept`;
    }
    if (step < concerned || cell.fault === "late") {
      if (!positive) {
        return `${what} got ${reply}${step < concerned ? " before the fault" : ", though the upstream answered within the timeout"}`;
      }
      continue;
    }
    client.write("QUIT\r\n");
    return /^4\d\d /.test(reply) ? undefined : `${what} got ${reply}, not a 4xx`;
  }
  client.write("QUIT\r\n");
  return undefined;
}

async function matrix(workers: string, second: number): Promise<void> {
  const upstream = await HostileUpstream.start();
  // One resolver for every start: a cell that kills the process gets it restarted quickly.
  const dns = await startDnsmasq();
  const subject = new Subject({
    MXSCREEN_DNS: dns.address,
    MXSCREEN_WORKERS: workers,
    MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${upstream.port}`,
    MXSCREEN_UPSTREAM_IDENTITY: "xclient",
    MXSCREEN_UPSTREAM_TIMEOUT: `${UPSTREAM_TIMEOUT_MS}ms`,
    // RFC 5321's 10 minutes after the final dot by default: the stall after it is waited out quickly here.
    MXSCREEN_UPSTREAM_DATA_TIMEOUT: `${UPSTREAM_TIMEOUT_MS}ms`,
    MXSCREEN_ALLOW: "127.0.0.0/8",
    // Each cell's fault is planned for the connection its MAIL opens: no warm connection may serve it
    // instead. Faults of a connection handed from one session to the next are tested below.
    MXSCREEN_UPSTREAM_POOL: "0",
  });
  const turns = new Turns();
  const cells: Cell[] = STAGES.flatMap((stage) =>
    FAULTS(stage).flatMap((fault) => [false, true].map((hangsUp) => ({ stage, fault, hangsUp })))
  )
    .map((cell, index) => ({ ...cell, index }));
  const results = new Map<Cell, { problems: string[]; suspect: boolean }>();
  // Side by side first; a cell that ran while the process died or spoke is run again alone,
  // so what is reported is what that cell alone does.
  const queue = cells.filter((cell) => !atListener(cell));
  await Promise.all(Array.from({ length: CONCURRENT_CELLS }, async () => {
    for (let cell = queue.shift(); cell; cell = queue.shift()) {
      results.set(cell, await runCell(subject, upstream, turns, cell, `127.${second}.${cell.index}`));
    }
  }));
  const suspects = [...results].filter(([, result]) => result.suspect).map(([cell]) => cell);
  for (const cell of suspects) results.set(cell, await runCell(subject, upstream, turns, cell, `127.${second}.${100 + cell.index}`));
  const strays = upstream.unplanned.length;
  // The listener's faults last and alone: a connect still under way after it was given up
  // would reach the reopened listener on a SYN retransmit (1 s, then 3 s) and take a plan.
  for (const cell of cells.filter(atListener)) {
    const result = await runCell(subject, upstream, turns, cell, `127.${second}.${cell.index}`);
    const before = upstream.unplanned.length;
    if (cell.fault === "stall") await sleep(3_500);
    for (const received of upstream.unplanned.slice(before)) {
      result.problems.push(
        `mxscreen went on connecting after the upstream failed or the client left: a connection reached the upstream seconds later, carrying ${
          JSON.stringify(received())
        }`,
      );
    }
    results.set(cell, result);
  }
  await subject.server?.stop();
  const failed = cells.filter((cell) => results.get(cell)!.problems.length > 0);
  if (failed.length > 0 || strays > 0) {
    const lines = failed.map((cell) => `  ${label(cell)}: ${results.get(cell)!.problems.join("; ")}`);
    if (strays > 0) {
      lines.push(
        `  ${strays} upstream connection(s) nobody planned during the side-by-side cells: ${
          upstream.unplanned.slice(0, strays).map((r) => JSON.stringify(r())).join(", ")
        }`,
      );
    }
    throw new Error(
      `${failed.length} of ${cells.length} cells failed (MXSCREEN_WORKERS=${workers}; ${suspects.length} run again alone):\n${
        lines.join("\n")
      }`,
    );
  }
}

test(
  "fault matrix, inline: every upstream fault at every step, with the client staying or hanging up, leaves the process up, the client a 4xx and a bystander delivered",
  () => matrix("0", 60),
  { timeoutMs: 240_000 },
);

test(
  "fault matrix, two workers: every upstream fault at every step, with the client staying or hanging up, leaves the process up, the client a 4xx and a bystander delivered",
  () => matrix("2", 61),
  { timeoutMs: 240_000 },
);

/** A whole message from `source`; says what went wrong, if anything. */
async function deliverThrough(port: number, source: string, marker: string): Promise<string | undefined> {
  const client = await RawClient.greeted(port, source);
  await client.command("EHLO pooled.example.net", /^250 .*\r\n/m);
  const expected = [/^250 /, /^250 /, /^354 /, /^250 /];
  const steps = STEPS(marker);
  for (let i = 0; i < steps.length; i++) {
    const problem = await step(client, steps[i], expected[i], `${source}'s ${steps[i].trim().split(/[ :]/)[0]}`);
    if (problem) return problem;
  }
  await client.command("QUIT", /^221 /m);
  return undefined;
}

for (const workers of ["0", "2"]) {
  test(
    `MXSCREEN_WORKERS=${workers}: a warm connection that resets, closes, stalls or answers late when handed to the next session costs that session nothing`,
    async () => {
      const upstream = await HostileUpstream.start();
      const dns = await startDnsmasq();
      const problems: string[] = [];
      for (const [index, fault] of (["reset", "close", "stall", "late"] as const).entries()) {
        // A server of its own for each fault: an empty pool, so the planned connection is the one handed over.
        const server = await startServer({
          MXSCREEN_DNS: dns.address,
          MXSCREEN_WORKERS: workers,
          MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${upstream.port}`,
          MXSCREEN_UPSTREAM_IDENTITY: "xclient",
          MXSCREEN_UPSTREAM_TIMEOUT: `${UPSTREAM_TIMEOUT_MS}ms`,
          MXSCREEN_ALLOW: "127.0.0.0/8",
        });
        const network = `127.62.${Number(workers) * 10 + index}`;
        const warm = upstream.plan({ stage: "handover", fault });
        const replacement = upstream.plan("normal");
        const first = await deliverThrough(server.port, `${network}.1`, `pool${workers}${index}a`);
        if (first) problems.push(`${fault}: the first session: ${first}`);
        // Its connection goes back to the pool as the session ends, just after the 221.
        await sleep(300);
        const marker = `pool${workers}${index}b`;
        const second = await deliverThrough(server.port, `${network}.2`, marker);
        if (second) problems.push(`${fault}: the next session: ${second}`);
        const message = upstream.accepted.find((m) => m.data.includes(marker));
        if (message?.xclientAddr !== `${network}.2`) {
          problems.push(`${fault}: the upstream took the next session's message as from ${message?.xclientAddr}`);
        }
        const replaced = await within(replacement.taken, 100);
        if (replaced === (fault === "late")) {
          problems.push(
            `${fault}: ${replaced ? "a new connection replaced one that answered in time" : "no new connection replaced the failed one"}`,
          );
        }
        replacement.withdraw();
        warm.withdraw();
        const said = server.lines.filter((line) => /UPSTREAM-FAILED|\bBUG\b/.test(line));
        if (said.length > 0) problems.push(`${fault}: mxscreen said: ${said.join(" | ")}`);
        await server.stop();
      }
      if (problems.length > 0) throw new Error(problems.join("\n"));
    },
    { timeoutMs: 90_000 },
  );
}
