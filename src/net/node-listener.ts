import type { Duplex } from "node:stream";
import { createServer, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import type { ClientSocket, ConnectionHandlers, Listener, ListenOptions } from "./types.ts";

/** node:net: the lightest listener on Deno (bench/README.md), and a fallback everywhere else. */
export function nodeListen(options: ListenOptions): Promise<Listener> {
  const server = createServer({ noDelay: true });
  // Deno's node:net server goes deaf for good after one EMFILE; staying below the limit avoids it.
  server.maxConnections = options.maxConnections;
  server.on("connection", (socket: Socket) => {
    let handlers: ConnectionHandlers | undefined;
    let closed = false;
    let stream: Duplex = socket;
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
      if (closed) return;
      closed = true;
      handlers?.close();
    });
    if (client.remoteAddress === "") {
      socket.destroy();
      return;
    }
    handlers = options.onConnection(client);
    socket.on("data", onData);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off("error", reject);
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : options.port;
      resolve({ host: options.host, port, close: () => server.close() });
    });
  });
}
