import type { ClientSocket, ConnectionHandlers, Listener, ListenOptions } from "./types.ts";

/** The part of Bun's socket API we use, typed here so nothing else needs Bun's types. */
interface BunSocket {
  readonly remoteAddress: string;
  readonly remotePort?: number;
  data: BunConnection;
  write(data: string | Uint8Array): number;
  end(): void;
  terminate?(): void;
}

interface BunServer {
  readonly port: number;
  stop(closeActive?: boolean): void;
}

interface BunConnection {
  handlers: ConnectionHandlers | undefined;
  /** Bytes the kernel did not take yet, written on drain. */
  pending: Uint8Array[];
  ending: boolean;
  closed: boolean;
}

interface BunListenApi {
  listen(options: {
    hostname: string;
    port: number;
    socket: {
      open(socket: BunSocket): void;
      data(socket: BunSocket, data: Uint8Array): void;
      drain(socket: BunSocket): void;
      close(socket: BunSocket): void;
      error(socket: BunSocket, error: Error): void;
    };
  }): BunServer;
}

const encoder = new TextEncoder();

/** Bun.listen: about a quarter of node:net's memory per held connection on Bun (bench/README.md). */
export function bunListen(bun: BunListenApi, options: ListenOptions): Promise<Listener> {
  let open = 0;
  const flush = (socket: BunSocket) => {
    const state = socket.data;
    while (state.pending.length > 0) {
      const head = state.pending[0];
      const written = socket.write(head);
      if (written < head.length) {
        state.pending[0] = head.subarray(Math.max(0, written));
        return;
      }
      state.pending.shift();
    }
    if (state.ending) socket.end();
  };
  const server = bun.listen({
    hostname: options.host,
    port: options.port,
    socket: {
      open(socket) {
        open++;
        const state: BunConnection = { handlers: undefined, pending: [], ending: false, closed: false };
        socket.data = state;
        if (open > options.maxConnections) {
          socket.end();
          return;
        }
        const client: ClientSocket = {
          remoteAddress: socket.remoteAddress,
          remotePort: socket.remotePort ?? 0,
          write: (data) => {
            if (state.closed || state.ending) return;
            const bytes = typeof data === "string" ? encoder.encode(data) : data;
            if (state.pending.length > 0) {
              state.pending.push(bytes.slice());
              return;
            }
            const written = socket.write(bytes);
            if (written < bytes.length) state.pending.push(bytes.slice(Math.max(0, written)));
          },
          end: () => {
            if (state.closed || state.ending) return;
            state.ending = true;
            if (state.pending.length === 0) socket.end();
          },
          destroy: () => {
            if (state.closed) return;
            state.pending = [];
            if (socket.terminate) socket.terminate();
            else socket.end();
          },
        };
        state.handlers = options.onConnection(client);
        // Bun may run the close callback inside end() or terminate(), before we get here.
        if (state.closed) state.handlers.close();
      },
      data(socket, data) {
        socket.data.handlers?.data(data);
      },
      drain(socket) {
        flush(socket);
      },
      close(socket) {
        open--;
        const state = socket.data;
        if (state.closed) return;
        state.closed = true;
        state.handlers?.close();
      },
      error() {},
    },
  });
  return Promise.resolve({ host: options.host, port: server.port, close: () => server.stop(false) });
}
