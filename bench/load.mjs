// The load generator of the peers bench: node:net only, run as a child process (fork, IPC) of
// bench/peers.mjs. Each job it is sent is bounded in count and in time and answers once.
// Clients bind to the 127.x.y.z source addresses they are given (at most ~200 sockets per
// address, fresh addresses for every run, so client TIME_WAIT never collides).
//
// Jobs ({ op, ... } → { op, ...result }):
//   held-open   open n clients that wait politely through the greet wait; report how many are
//               connected, teased (got "220-") or already closed. On the final "220 " each
//               client sends EHLO, then QUIT, by itself.
//   held-status where the held clients are now.
//   held-finish wait (bounded) until every held client has ended; count those that got 250 to
//               EHLO and 221 to QUIT, and why the others did not.
//   pregreet    n clients, `concurrency` at a time, each from its own address, that send EHLO at
//               once on connect; report verdicts (see verdictOf) and the time they took.
//   sessions    n full polite sessions (greeting, EHLO, MAIL, RCPT, DATA, QUIT) `concurrency` at
//               a time over the given addresses; report successes, failures and latencies.
//   probe       one fresh client: milliseconds to its first byte and the first line.
import { connect } from "node:net";

const CRLF = "\r\n";

/** Reads SMTP replies off a socket: calls onReply(code, lines) for each complete reply. */
function replyReader(onReply) {
  let buf = "";
  let lines = [];
  return (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, "");
      buf = buf.slice(i + 1);
      // A line with another code than the lines before it starts a new reply (a teaser "220-"
      // followed by the answer to a command sent early is two replies, not one).
      if (lines.length > 0 && line.slice(0, 3) !== lines[0].slice(0, 3)) {
        const got = lines;
        lines = [];
        onReply(Number(got[0].slice(0, 3)) || 0, got);
      }
      lines.push(line);
      if (!/^\d{3}-/.test(line)) {
        const got = lines;
        lines = [];
        onReply(Number(line.slice(0, 3)) || 0, got);
      }
    }
  };
}

function open(port, localAddress, connectTimeoutMs) {
  const socket = connect({ port, host: "127.0.0.1", localAddress });
  socket.setEncoding("latin1");
  socket.setNoDelay(true);
  const timer = setTimeout(() => socket.destroy(new Error("connect timeout")), connectTimeoutMs);
  socket.once("connect", () => clearTimeout(timer));
  socket.once("close", () => clearTimeout(timer));
  return socket;
}

// ---------------------------------------------------------------------------------------- held
let held = [];

function holdOne(port, addr, t) {
  const c = { teased: false, connected: false, closed: false, greeted: false, ehlo: false, quit: false, error: "", firstByteMs: -1 };
  const started = performance.now();
  const s = open(port, addr, t.connectTimeoutMs);
  c.socket = s;
  let step = "greeting";
  const read = replyReader((code) => {
    if (step === "greeting") {
      if (code === 220) {
        c.greeted = true;
        step = "ehlo";
        s.write(`EHLO held.bench.example${CRLF}`);
      } else {
        c.error ||= `greeting ${code}`;
        s.destroy();
      }
    } else if (step === "ehlo") {
      if (code === 250) {
        c.ehlo = true;
        step = "quit";
        s.write(`QUIT${CRLF}`);
      } else {
        c.error ||= `ehlo ${code}`;
        s.destroy();
      }
    } else if (step === "quit") {
      if (code === 221) c.quit = true;
      else c.error ||= `quit ${code}`;
      step = "done";
      s.end();
    }
  });
  s.on("connect", () => (c.connected = true));
  s.on("data", (d) => {
    if (c.firstByteMs < 0) c.firstByteMs = performance.now() - started;
    if (!c.teased && d.startsWith("220-")) c.teased = true;
    read(d);
  });
  s.on("error", (e) => (c.error ||= e.code ?? e.message));
  s.on("close", () => {
    c.closed = true;
    c.socket = null;
  });
  return c;
}

function heldCounts() {
  const r = { total: held.length, connected: 0, open: 0, waiting: 0, teased: 0, teasedOpen: 0, greeted: 0, ok: 0, closed: 0, errors: {} };
  for (const c of held) {
    if (c.connected) r.connected++;
    if (c.connected && !c.closed) r.open++;
    if (c.connected && !c.closed && !c.greeted) r.waiting++;
    if (c.teased) r.teased++;
    if (c.teased && !c.closed && !c.greeted) r.teasedOpen++;
    if (c.greeted) r.greeted++;
    if (c.ehlo && c.quit) r.ok++;
    if (c.closed) r.closed++;
    if (c.error) r.errors[c.error] = (r.errors[c.error] ?? 0) + 1;
  }
  return r;
}

async function heldOpen({ port, addrs, n, perAddr, batch, connectTimeoutMs, deadlineMs }) {
  held = [];
  const started = performance.now();
  for (let i = 0; i < n; i += batch) {
    if (performance.now() - started > deadlineMs) break;
    const wave = [];
    for (let j = i; j < Math.min(n, i + batch); j++) {
      const c = holdOne(port, addrs[Math.floor(j / perAddr)], { connectTimeoutMs });
      held.push(c);
      wave.push(
        new Promise((resolve) => {
          c.socket.once("connect", resolve);
          c.socket.once("close", resolve);
        }),
      );
    }
    await Promise.all(wave);
  }
  return { ...heldCounts(), openMs: performance.now() - started };
}

async function heldFinish({ timeoutMs }) {
  const deadline = performance.now() + timeoutMs;
  while (held.some((c) => !c.closed) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  let stillOpen = 0;
  for (const c of held) {
    if (!c.closed) {
      stillOpen++;
      c.error ||= "still waiting at the deadline";
      c.socket?.destroy();
    }
    if (!c.connected) c.error ||= "never connected";
    else if (!c.greeted) c.error ||= "closed before a final 220";
    else if (!c.ehlo) c.error ||= "no 250 to EHLO";
    else if (!c.quit) c.error ||= "no 221 to QUIT";
  }
  const counts = heldCounts();
  const last = held.filter((c) => c.quit).length;
  held = [];
  return { ...counts, stillOpen, last };
}

// ------------------------------------------------------------------------------------ pregreet
/**
 * A verdict: the server's decision about a client that talks first. The client connects and at
 * once sends "EHLO pregreet.bench.example", then goes on like ratware without waiting for a
 * greeting: after each 2xx answer it sends the next command (MAIL FROM, then RCPT TO). A 220
 * greeting (final or teaser) is not an answer to a command and is skipped. After RCPT TO it sends
 * DATA and, on 354, a short message. The verdict is:
 *   refused   a 4xx/5xx answer to any of its commands, or instead of them (the client then
 *             sends QUIT and waits for the close): postscreen's enforce is a 550 at RCPT,
 *             Haraka's early_talker a 554 at DATA (after its pause)
 *   closed    the server closed (or reset) the connection without a 4xx/5xx
 *   accepted  the message got 250 after DATA: no verdict (the early talker got through)
 * Time to verdict: connect → refusal or close. Verdicts per second count refused + closed.
 */
function pregreetOne(port, addr, timeoutMs) {
  return new Promise((resolve) => {
    const started = performance.now();
    const s = open(port, addr, timeoutMs);
    let kind = "closed";
    let firstCode = 0;
    let at = NaN;
    const script = ["MAIL FROM:<spam@pregreet.bench.example>", "RCPT TO:<user@bench.example>", "DATA"];
    let step = 0; // replies to commands seen
    const timer = setTimeout(() => {
      kind = "timeout";
      s.destroy();
    }, timeoutMs);
    const read = replyReader((code) => {
      if (kind !== "closed") return;
      if (code === 220) return; // the greeting, not an answer
      firstCode ||= code;
      if (code >= 400) {
        kind = "refused";
        at = performance.now() - started;
        s.write(`QUIT${CRLF}`);
        s.end();
      } else if (step < script.length) {
        s.write(script[step++] + CRLF);
      } else if (code === 354) {
        s.write(`Subject: pregreet${CRLF}${CRLF}spam${CRLF}.${CRLF}`);
      } else {
        kind = "accepted";
        s.write(`QUIT${CRLF}`);
        s.end();
      }
    });
    s.on("connect", () => s.write(`EHLO pregreet.bench.example${CRLF}`));
    s.on("data", read);
    s.on("error", (e) => {
      if (kind === "closed" && e.code !== "ECONNRESET" && e.code !== "EPIPE") kind = `error ${e.code ?? e.message}`;
    });
    s.on("close", () => {
      clearTimeout(timer);
      resolve({ kind, ms: Number.isFinite(at) ? at : performance.now() - started, firstCode });
    });
  });
}

async function pool(n, concurrency, task) {
  const results = new Array(n);
  let next = 0;
  const runner = async () => {
    while (next < n) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, runner));
  return results;
}

function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

async function pregreet({ port, addrs, n, concurrency, timeoutMs }) {
  const started = performance.now();
  const results = await pool(n, concurrency, (i) => pregreetOne(port, addrs[i % addrs.length], timeoutMs));
  const elapsedMs = performance.now() - started;
  const kinds = {};
  for (const r of results) kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
  const firstCodes = {};
  for (const r of results) firstCodes[r.firstCode] = (firstCodes[r.firstCode] ?? 0) + 1;
  const ms = results.map((r) => r.ms);
  return { n, elapsedMs, kinds, firstCodes, p50: percentile(ms, 50), p99: percentile(ms, 99) };
}

// ------------------------------------------------------------------------------------ sessions
function body(size) {
  const head = [
    "From: <sender@bench.example>",
    "To: <user@bench.example>",
    "Subject: bench",
    "Date: Mon, 23 Nov 2026 00:00:00 +0000",
    `Message-ID: <${Math.random().toString(36).slice(2)}@bench.example>`,
    "",
  ].join(CRLF) + CRLF;
  const line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
  let text = head;
  while (text.length < size) text += line;
  return text.slice(0, size - 2) + CRLF;
}

/** One full polite session: greeting, EHLO, MAIL, RCPT, DATA of `size` bytes, QUIT. */
function sessionOne(port, addr, size, timeoutMs) {
  return new Promise((resolve) => {
    const started = performance.now();
    const s = open(port, addr, timeoutMs);
    const steps = [
      [220, `EHLO client.bench.example`],
      [250, "MAIL FROM:<sender@bench.example>"],
      [250, "RCPT TO:<user@bench.example>"],
      [250, "DATA"],
      [354, body(size) + "."],
      [250, "QUIT"],
      [221, null],
    ];
    let step = 0;
    let error = "";
    const timer = setTimeout(() => {
      error ||= `timeout at step ${step}`;
      s.destroy();
    }, timeoutMs);
    const read = replyReader((code, lines) => {
      const [want, send] = steps[step] ?? [0, null];
      if (code !== want) {
        error ||= `step ${step}: ${lines.join(" | ").slice(0, 120)}`;
        s.destroy();
        return;
      }
      step++;
      if (send !== null) s.write(send + CRLF);
      else s.end();
    });
    s.on("data", read);
    s.on("error", (e) => (error ||= e.code ?? e.message));
    s.on("close", () => {
      clearTimeout(timer);
      const ok = step === steps.length && !error;
      resolve({ ok, error: ok ? "" : error || `closed at step ${step}`, ms: performance.now() - started });
    });
  });
}

async function sessions({ port, addrs, n, concurrency, size, timeoutMs }) {
  const started = performance.now();
  const results = await pool(n, concurrency, (i) => sessionOne(port, addrs[i % addrs.length], size, timeoutMs));
  const elapsedMs = performance.now() - started;
  const ok = results.filter((r) => r.ok);
  const errors = {};
  for (const r of results) if (!r.ok) errors[r.error] = (errors[r.error] ?? 0) + 1;
  const ms = ok.map((r) => r.ms);
  return { n, ok: ok.length, elapsedMs, errors, p50: percentile(ms, 50), p99: percentile(ms, 99) };
}

// --------------------------------------------------------------------------------------- probe
function probe({ port, addr, timeoutMs }) {
  return new Promise((resolve) => {
    const started = performance.now();
    const s = open(port, addr, timeoutMs);
    let done = false;
    const finish = (r) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ms: NaN, line: "no byte within the timeout" }), timeoutMs);
    s.on("data", (d) => finish({ ms: performance.now() - started, line: d.split("\r\n")[0].slice(0, 60) }));
    s.on("error", (e) => finish({ ms: NaN, line: e.code ?? e.message }));
    s.on("close", () => finish({ ms: NaN, line: "closed" }));
  });
}

const jobs = {
  "held-open": heldOpen,
  "held-status": async () => heldCounts(),
  "held-finish": heldFinish,
  pregreet,
  sessions,
  probe,
};

process.on("message", async (msg) => {
  try {
    const result = await jobs[msg.op](msg);
    process.send({ id: msg.id, ok: true, result });
  } catch (e) {
    process.send({ id: msg.id, ok: false, error: String(e?.stack ?? e) });
  }
});
process.on("disconnect", () => process.exit(0));
