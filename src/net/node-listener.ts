import type { Duplex } from "node:stream";
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { canOpenFile } from "./open-files.ts";
import type { ClientSocket, ConnectionHandlers, Listener, ListenOptions } from "./types.ts";

const WATCH_MS = 250;
/** After running out of files: open again at the latest this long after, if a file can be opened by then. */
const RELISTEN_AFTER_MS = 5_000;

/**
 * node:net: the lightest listener on Deno (bench/README.md), and a fallback everywhere else.
 *
 * Deno's node:net server stops accepting for good after one EMFILE, without an error event
 * (RUNTIME-NOTES). `maxConnections` keeps its own connections below the open-files limit, but
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
    let handlers: ConnectionHandlers | undefined;
    let ended = false;
    let stream: Duplex = socket;
    open++;
    const onData = (chunk: Uint8Array) => handlers!.data(chunk);
    const client: ClientSocket = {
      remoteAddress: socket.remoteAddress ?? "",
      remotePort: socket.remotePort ?? 0,
      write: (data) => {
        if (!stream.destroyed && stream.writable) stream.write(data);
      },
      end: () => {
        if (!stream.destroyed) stream.end();
      },
      destroy: () => {
        stream.destroy();
        socket.destroy();
      },
      pause: () => stream.pause(),
      resume: () => stream.resume(),
      startTls: (done) => {
        const credentials = options.tls?.();
        if (!credentials) return done(false, "no TLS certificate configured");
        socket.off("data", onData);
        // A TLS server that never listens, handed this one connection: the STARTTLS form that
        // handshakes on Deno, Bun and Node alike (RUNTIME-NOTES).
        const tls = createTlsServer({ key: credentials.key, cert: credentials.cert });
        tls.once("secureConnection", (secure: TLSSocket) => {
          stream = secure;
          secure.on("data", onData);
          secure.on("error", () => {});
          done(true);
        });
        tls.once("tlsClientError", (error: Error) => {
          socket.destroy();
          done(false, error.message);
        });
        tls.emit("connection", socket);
      },
    };
    socket.on("error", () => {});
    socket.on("close", () => {
      if (ended) return;
      ended = true;
      open--;
      handlers?.close();
    });
    if (client.remoteAddress === "") {
      socket.destroy();
      return;
    }
    handlers = options.onConnection(client);
    socket.on("data", onData);
  };

  const start = (): Promise<Server> =>
    new Promise((resolve, reject) => {
      const next = createServer({ noDelay: true }, onConnection);
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
