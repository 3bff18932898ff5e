import type { Duplex } from "node:stream";
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { canOpenFile } from "../open-files.ts";
import type { ClientSocket, ConnectionHandlers, Listener, ListenOptions } from "../types.ts";

const WATCH_MS = 250;
/** How long a dropped connection's last write may take to leave before the socket is closed anyway (plus up to WATCH_MS). */
const DROP_GRACE_MS = 1_000;
const ignore = () => {};

/** The NodeConnection a socket belongs to, kept on the socket so one listener function serves every connection. */
const CONNECTION = Symbol("mxscreen connection");
type Tagged = Duplex & { [CONNECTION]: NodeConnection };

/** What the listener keeps of its connections: how many are open, and the drops waiting for a write to leave. */
interface Connections {
  open: number;
  /** Closed by the listener's watch once their grace has passed, if their write has not left by then. */
  readonly dropping: Set<NodeConnection>;
}

// Shared by every connection (node calls a listener with the socket as `this`): a held client
// costs no closure, bound function or once-wrapper of its own.
function onData(this: Duplex, chunk: Uint8Array): void {
  (this as Tagged)[CONNECTION].handlers?.data(chunk);
}

function onEnd(this: Duplex): void {
  (this as Tagged)[CONNECTION].handlers?.end();
}

function onClose(this: Duplex): void {
  (this as Tagged)[CONNECTION].closed();
}

/** One connection: its state and the ClientSocket methods in one object, on the socket. */
class NodeConnection implements ClientSocket {
  handlers: ConnectionHandlers | undefined;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** The socket writes go to: the raw one, then the TLS one after STARTTLS. */
  private stream: Duplex;
  private ended = false;
  /** Set when a drop waits for a write in flight: the socket closes when it has left, or once this time has passed. */
  private dropAt: number | undefined;

  constructor(private readonly socket: Socket, private readonly tls: ListenOptions["tls"], private readonly count: Connections) {
    this.stream = socket;
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? "";
    this.localPort = socket.localPort ?? 0;
    (socket as unknown as Tagged)[CONNECTION] = this;
    socket.on("error", ignore);
    socket.on("close", onClose);
  }

  closed(): void {
    if (this.ended) return;
    this.ended = true;
    this.count.dropping.delete(this);
    this.count.open--;
    this.handlers?.close();
  }

  write(data: string | Uint8Array): void {
    if (!this.stream.destroyed && this.stream.writable && this.dropAt === undefined) this.stream.write(data, () => this.written());
  }

  /** A write has left: a drop that waited for it goes ahead, once node's stream code is done with the write. */
  private written(): void {
    // Not inside the write's callback: a destroy there has node build an error for the stream's pending callbacks, with a stack trace.
    if (this.dropAt !== undefined && this.stream.writableLength === 0) queueMicrotask(() => this.destroyNow());
  }

  end(): void {
    if (!this.stream.destroyed && this.dropAt === undefined) this.stream.end();
  }

  /** The listener's watch: a drop whose write has not left within its grace (the client reads nothing) closes now. */
  overdue(now: number): void {
    if (this.dropAt !== undefined && now >= this.dropAt) this.destroyNow();
  }

  /**
   * A write still in flight is let leave first (nothing more is read or written meanwhile): on
   * Deno, closing a socket under a write makes node's stream code fail that write and build an
   * errno exception for it, which with the close itself was over a quarter of Deno's CPU per
   * pregreet verdict (a pregreet client's bytes arrive as the teaser is being written; bench
   * profile). A write that cannot leave (the client reads nothing) is dropped after DROP_GRACE_MS.
   * The write's own callback says when it has left: no empty write to wait on (a `sendto` and a
   * Deno op of its own) and no timer per drop (the listener's watch keeps the grace).
   */
  destroy(): void {
    if (this.dropAt !== undefined || this.stream.destroyed) return;
    if (this.stream.writableLength === 0 || this.stream.writableNeedDrain || this.stream.writableEnded) return this.destroyNow();
    this.stream.pause();
    this.dropAt = Date.now() + DROP_GRACE_MS;
    this.count.dropping.add(this);
  }

  /**
   * Without stack traces: on Deno, a write that fails as the socket closes has node's stream
   * code read the error's `stack`, which Deno builds with source maps; the error is ignored anyway.
   */
  private destroyNow(): void {
    this.count.dropping.delete(this);
    if (this.stream.destroyed && this.socket.destroyed) return;
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      this.stream.destroy();
      this.socket.destroy();
    } finally {
      Error.stackTraceLimit = limit;
    }
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  startTls(done: (ok: boolean, error?: string) => void): void {
    const credentials = this.tls?.();
    if (!credentials) return done(false, "no TLS certificate configured");
    this.socket.off("data", onData);
    this.socket.off("end", onEnd);
    // A TLS server that never listens, handed this one connection: the STARTTLS form that
    // handshakes on Deno, Bun and Node alike (a TLSSocket made over a flowing socket never
    // handshakes on Deno 2.9: denoland/deno issue 31759).
    const server = createTlsServer({ key: credentials.key, cert: credentials.cert, allowHalfOpen: true });
    server.once("secureConnection", (secure: TLSSocket) => {
      this.stream = secure;
      (secure as unknown as Tagged)[CONNECTION] = this;
      secure.on("data", onData);
      secure.on("end", onEnd);
      secure.on("error", ignore);
      done(true);
    });
    server.once("tlsClientError", (error: Error) => {
      this.socket.destroy();
      done(false, error.message);
    });
    server.emit("connection", this.socket);
  }
}
/**
 * Connections the kernel completes and queues before we accept them (capped by net.core.somaxconn).
 * node's default, 511, overflowed in an accept burst on Deno: a queue full for a moment drops the
 * SYNs that arrive, and those clients wait a second or three to retry (bench: 18,900 opened in 9 s).
 */
const LISTEN_BACKLOG = 4096;

/** After running out of files: open again at the latest this long after, if a file can be opened by then. */
const RELISTEN_AFTER_MS = 5_000;

/**
 * node:net: the lightest listener on Deno (bench/README.md), and a fallback everywhere else.
 *
 * Deno's node:net server stops accepting for good after one EMFILE, without an error event
 * (measured on Deno 2.9). `maxConnections` keeps its own connections below the open-files limit, but
 * files the rest of the process opens can still run it out; so while many connections are open
 * we check that one more file can be opened, and after the process ran out the server is opened
 * again once there is room. Runtimes that recover by themselves lose nothing by it.
 */
export function nodeListen(options: ListenOptions): Promise<Listener> {
  const limit = options.openFiles;
  const count: Connections = { open: 0, dropping: new Set() };
  /** When the process last ran out of files, with the connections open then; undefined while it has room. */
  let saturated: { at: number; open: number } | undefined;
  let server: Server;
  let port = options.port;
  let closed = false;

  const onConnection = (socket: Socket) => {
    const open = ++count.open;
    // The table fills at an accept far more often than between two watch ticks, and a file
    // that something else held for a moment may be free again by the next tick: look now.
    if (saturated === undefined && open >= limit / 3 && !canOpenFile()) saturated = { at: Date.now(), open };
    const connection = new NodeConnection(socket, options.tls, count);
    if (connection.remoteAddress === "") {
      socket.destroy();
      return;
    }
    connection.handlers = options.onConnection(connection);
    socket.on("data", onData);
    socket.on("end", onEnd);
  };

  const start = (): Promise<Server> =>
    new Promise((resolve, reject) => {
      // Half-open: a client that sent its last command and shut down its side still gets the answers.
      const next = createServer({ noDelay: true, allowHalfOpen: true }, onConnection);
      next.maxConnections = options.maxConnections;
      next.once("error", reject);
      next.listen({ host: options.host, port, backlog: LISTEN_BACKLOG, reusePort: options.reusePort ?? false }, () => {
        next.off("error", reject);
        next.on("error", () => (saturated ??= { at: Date.now(), open: count.open }));
        const address = next.address();
        port = typeof address === "object" && address ? address.port : port;
        resolve(next);
      });
    });

  const watch = setInterval(() => {
    if (count.dropping.size > 0) {
      const now = Date.now();
      for (const connection of count.dropping) connection.overdue(now);
    }
    if (closed || (saturated === undefined && count.open < limit / 3)) return;
    if (!canOpenFile()) {
      saturated ??= { at: Date.now(), open: count.open };
      return;
    }
    if (saturated === undefined) return;
    if (count.open > saturated.open - Math.max(16, limit / 50) && Date.now() - saturated.at < RELISTEN_AFTER_MS) return;
    saturated = undefined;
    // Closed first: without SO_REUSEPORT the new server could not bind the port beside it.
    server.close();
    start().then((next) => {
      if (closed) return void next.close();
      server = next;
      options.onRelisten?.(
        `opened again: the process had run out of its ${limit} open files (EMFILE), after which Deno's node:net accepts no more`,
      );
    }, (error: Error) => {
      saturated = { at: Date.now(), open: count.open };
      options.onRelisten?.(
        `could not be opened again after running out of open files, trying again in ${RELISTEN_AFTER_MS} ms: ${error.message}`,
      );
    });
  }, WATCH_MS);
  (watch as { unref?: () => void }).unref?.();

  return start().then((first) => {
    server = first;
    return {
      host: options.host,
      port,
      close: () => {
        closed = true;
        clearInterval(watch);
        // Without the watch nothing would end a drop whose write cannot leave.
        for (const connection of count.dropping) connection.overdue(Infinity);
        server.close();
      },
    };
  }, (error) => {
    clearInterval(watch);
    throw error;
  });
}
