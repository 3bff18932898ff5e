import { createServer, type Socket } from "node:net";
import type { ClientSocket, ConnectionHandlers, Listener, ListenOptions } from "./types.ts";

/** node:net: the lightest listener on Deno (bench/README.md), and a fallback everywhere else. */
export function nodeListen(options: ListenOptions): Promise<Listener> {
  const server = createServer({ noDelay: true });
  // Deno's node:net server goes deaf for good after one EMFILE; staying below the limit avoids it.
  server.maxConnections = options.maxConnections;
  server.on("connection", (socket: Socket) => {
    let handlers: ConnectionHandlers | undefined;
    let closed = false;
    const client: ClientSocket = {
      remoteAddress: socket.remoteAddress ?? "",
      remotePort: socket.remotePort ?? 0,
      write: (data) => {
        if (!socket.destroyed && socket.writable) socket.write(data);
      },
      end: () => {
        if (!socket.destroyed) socket.end();
      },
      destroy: () => socket.destroy(),
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
    socket.on("data", (chunk: Uint8Array) => handlers!.data(chunk));
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
