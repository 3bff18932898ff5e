import type { Duplex } from "node:stream";
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { canOpenFile } from "../open-files.ts";
import type { ClientSocket, ConnectionHandlers, Listener, ListenOptions } from "../types.ts";

const WATCH_MS = 250;
const ignore = () => {};

/**
 * One connection: its state and the ClientSocket methods in one object, so that a held client
 * costs one object and two bound functions rather than a closure per method.
 */
class NodeConnection implements ClientSocket {
  handlers: ConnectionHandlers | undefined;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** The socket writes go to: the raw one, then the TLS one after STARTTLS. */
  private stream: Duplex;
  private ended = false;
  readonly onData = (chunk: Uint8Array) => this.handlers!.data(chunk);
  readonly onEnd = () => this.handlers?.end();

  constructor(private readonly socket: Socket, private readonly tls: ListenOptions["tls"], onClosed: () => void) {
    this.stream = socket;
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? "";
    this.localPort = socket.localPort ?? 0;
    socket.on("error", ignore);
    socket.once("close", () => {
      if (this.ended) return;
      this.ended = true;
      onClosed();
      this.handlers?.close();
    });
  }

  write(data: string | Uint8Array): void {
    if (!this.stream.destroyed && this.stream.writable) this.stream.write(data);
  }

  end(): void {
    if (!this.stream.destroyed) this.stream.end();
  }

  /**
   * Without stack traces: on Deno, closing a socket whose write is still in flight (a pregreet
   * client's teaser: its bytes arrive as the teaser is written) fails that write synchronously,
   * and node's stream code reads the error's `stack`, which Deno builds with source maps. That
   * was a third of Deno's CPU per pregreet verdict (bench profile); the error is ignored anyway.
   */
  destroy(): void {
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
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
    // A TLS server that never listens, handed this one connection: the STARTTLS form that
    // handshakes on Deno, Bun and Node alike (a TLSSocket made over a flowing socket never
    // handshakes on Deno 2.9: denoland/deno issue 31759).
    const server = createTlsServer({ key: credentials.key, cert: credentials.cert, allowHalfOpen: true });
    server.once("secureConnection", (secure: TLSSocket) => {
      this.stream = secure;
      secure.on("data", this.onData);
      secure.on("end", this.onEnd);
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
  let open = 0;
  /** When the process last ran out of files, with the connections open then; undefined while it has room. */
  let saturated: { at: number; open: number } | undefined;
  let server: Server;
  let port = options.port;
  let closed = false;

  const onConnection = (socket: Socket) => {
    open++;
    // The table fills at an accept far more often than between two watch ticks, and a file
    // that something else held for a moment may be free again by the next tick: look now.
    if (saturated === undefined && open >= limit / 3 && !canOpenFile()) saturated = { at: Date.now(), open };
    const connection = new NodeConnection(socket, options.tls, () => open--);
    if (connection.remoteAddress === "") {
      socket.destroy();
      return;
    }
    connection.handlers = options.onConnection(connection);
    socket.on("data", connection.onData);
    socket.on("end", connection.onEnd);
  };

  const start = (): Promise<Server> =>
    new Promise((resolve, reject) => {
      // Half-open: a client that sent its last command and shut down its side still gets the answers.
      const next = createServer({ noDelay: true, allowHalfOpen: true }, onConnection);
      next.maxConnections = options.maxConnections;
      next.once("error", reject);
      next.listen({ host: options.host, port, reusePort: options.reusePort ?? false }, () => {
        next.off("error", reject);
        next.on("error", () => (saturated ??= { at: Date.now(), open }));
        const address = next.address();
        port = typeof address === "object" && address ? address.port : port;
        resolve(next);
      });
    });

  const watch = setInterval(() => {
    if (closed || (saturated === undefined && open < limit / 3)) return;
    if (!canOpenFile()) {
      saturated ??= { at: Date.now(), open };
      return;
    }
    if (saturated === undefined) return;
    if (open > saturated.open - Math.max(16, limit / 50) && Date.now() - saturated.at < RELISTEN_AFTER_MS) return;
    saturated = undefined;
    // Closed first: without SO_REUSEPORT the new server could not bind the port beside it.
    server.close();
    start().then((next) => {
      if (closed) return void next.close();
      server = next;
      options.onRelisten?.(`opened again: the process had run out of its ${limit} open files (EMFILE), after which Deno's node:net accepts no more`);
    }, (error: Error) => {
      saturated = { at: Date.now(), open };
      options.onRelisten?.(`could not be opened again after running out of open files, trying again in ${RELISTEN_AFTER_MS} ms: ${error.message}`);
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
        server.close();
      },
    };
  }, (error) => {
    clearInterval(watch);
    throw error;
  });
}
