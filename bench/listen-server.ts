// Bench server: accepts TCP connections on 127.0.0.1, writes a "220-bench\r\n"
// banner teaser and then holds each socket, reading and discarding input.
//
//   deno run -A bench/listen-server.ts --api deno-listen|node-net --port 0
//   bun bench/listen-server.ts --api bun-listen|node-net --port 0
//
// Prints exactly one line "ready <port>" on stdout once listening.
// Runtime globals are reached through globalThis so the file loads on both runtimes.
import * as net from "node:net";

// deno-lint-ignore no-explicit-any
type Any = any;
const g = globalThis as Any;
const Deno_: Any = g.Deno;
const Bun_: Any = g.Bun;

const BANNER = "220-bench\r\n";
const BANNER_BYTES = new TextEncoder().encode(BANNER);

function argv(): string[] {
  if (Deno_?.args) return [...Deno_.args];
  return (g.process?.argv ?? []).slice(2);
}

function opt(args: string[], name: string, dflt?: string): string {
  const i = args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  if (dflt === undefined) fail(`missing --${name}`);
  return dflt!;
}

function fail(msg: string): never {
  console.error(`listen-server: ${msg}`);
  if (Deno_?.exit) Deno_.exit(2);
  g.process.exit(2);
  throw new Error(msg);
}

function runtimeName(): string {
  if (Bun_) return `bun ${Bun_.version}`;
  if (Deno_) return `deno ${Deno_.version?.deno}`;
  return `node ${g.process?.version}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const args = argv();
const api = opt(args, "api");
const port = Number(opt(args, "port", "0"));
// node:net only: stay below the 20,000 open-files limit (Deno node:net goes deaf after EMFILE).
const maxConns = Number(opt(args, "max-conns", "19500"));
// deno-listen only: bytes of the per-connection read buffer (a pending Deno read pins one).
const readBuf = Number(opt(args, "read-buf", "4096"));
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad --port ${port}`);

async function denoListen(): Promise<void> {
  if (typeof Deno_?.listen !== "function") {
    fail(`--api deno-listen needs Deno.listen, not available on ${runtimeName()}`);
  }
  const listener = Deno_.listen({ hostname: "127.0.0.1", port, transport: "tcp" });
  console.log(`ready ${listener.addr.port}`);
  let backoff = 0;
  // Explicit accept loop: `for await` ends for good on the first EMFILE.
  for (;;) {
    let conn: Any;
    try {
      conn = await listener.accept();
      backoff = 0;
    } catch (e) {
      if (e instanceof Deno_.errors.BadResource || e instanceof Deno_.errors.Interrupted) return;
      backoff = Math.min(backoff ? backoff * 2 : 5, 200);
      console.error(`accept: ${(e as Error).message}; retry in ${backoff} ms`);
      await sleep(backoff);
      continue;
    }
    void denoHold(conn);
  }
}

async function denoHold(conn: Any): Promise<void> {
  try {
    let off = 0;
    while (off < BANNER_BYTES.length) off += await conn.write(BANNER_BYTES.subarray(off));
    const buf = new Uint8Array(readBuf);
    while ((await conn.read(buf)) !== null) { /* discard */ }
  } catch {
    /* peer reset etc. */
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

function bunListen(): void {
  if (typeof Bun_?.listen !== "function") {
    fail(`--api bun-listen needs Bun.listen, not available on ${runtimeName()}`);
  }
  const server = Bun_.listen({
    hostname: "127.0.0.1",
    port,
    socket: {
      open(s: Any) {
        s.write(BANNER);
      },
      data() {/* discard */},
      close() {},
      error() {},
    },
  });
  console.log(`ready ${server.port}`);
}

function nodeNet(): void {
  const server = net.createServer((sock) => {
    sock.on("error", () => {});
    sock.on("data", () => {/* discard */});
    sock.write(BANNER);
  });
  server.maxConnections = maxConns;
  server.on("error", (e) => console.error(`server error: ${e.message}`));
  server.listen({ host: "127.0.0.1", port }, () => {
    const a = server.address() as net.AddressInfo;
    console.log(`ready ${a.port}`);
  });
}

switch (api) {
  case "deno-listen":
    await denoListen();
    break;
  case "bun-listen":
    bunListen();
    break;
  case "node-net":
    nodeNet();
    break;
  default:
    fail(`unknown --api ${api} (deno-listen|bun-listen|node-net)`);
}
