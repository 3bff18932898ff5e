import type { ClientSocket, ConnectionHandlers, Listener, ListenOptions } from "./types.ts";

/** The part of Bun's socket API we use, typed here so nothing else needs Bun's types. */
interface BunSocket {
  readonly remoteAddress: string;
  readonly remotePort?: number;
  data: BunConnection;
  write(data: string | Uint8Array): number;
  end(): void;
  terminate?(): void;
  pause(): void;
  resume(): void;
  upgradeTLS(options: { data: BunConnection; tls: { key: string; cert: string }; socket: BunHandlers }): [BunSocket, BunSocket];
}

interface BunHandlers {
  open?(socket: BunSocket): void;
  data(socket: BunSocket, data: Uint8Array): void;
  drain(socket: BunSocket): void;
  close(socket: BunSocket): void;
  error(socket: BunSocket, error: Error): void;
  handshake?(socket: BunSocket, success: boolean, error: Error | null): void;
}

interface BunServer {
  readonly port: number;
  stop(closeActive?: boolean): void;
}

interface BunConnection {
  handlers: ConnectionHandlers | undefined;
  /** The socket writes go to: the raw one, then the TLS one after STARTTLS. */
  target: BunSocket;
  /** Bytes the kernel did not take yet, written on drain. */
  pending: Uint8Array[];
  ending: boolean;
  closed: boolean;
}

interface BunListenApi {
  listen(options: { hostname: string; port: number; reusePort: boolean; socket: BunHandlers & { open(socket: BunSocket): void } }): BunServer;
}

const encoder = new TextEncoder();

function flush(state: BunConnection): void {
  while (state.pending.length > 0) {
    const head = state.pending[0];
    const written = state.target.write(head);
    if (written < head.length) {
      state.pending[0] = head.subarray(Math.max(0, written));
      return;
    }
    state.pending.shift();
  }
  if (state.ending) state.target.end();
}

/** Bun.listen: about a quarter of node:net's memory per held connection on Bun (bench/README.md). */
export function bunListen(bun: BunListenApi, options: ListenOptions): Promise<Listener> {
  let open = 0;
  const closed = (state: BunConnection) => {
    if (state.closed) return;
    state.closed = true;
    open--;
    state.handlers?.close();
  };
  const server = bun.listen({
    hostname: options.host,
    port: options.port,
    reusePort: options.reusePort ?? false,
    socket: {
      open(socket) {
        open++;
        const state: BunConnection = { handlers: undefined, target: socket, pending: [], ending: false, closed: false };
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
            const written = state.target.write(bytes);
            if (written < bytes.length) state.pending.push(bytes.slice(Math.max(0, written)));
          },
          end: () => {
            if (state.closed || state.ending) return;
            state.ending = true;
            if (state.pending.length === 0) state.target.end();
          },
          destroy: () => {
            if (state.closed) return;
            state.pending = [];
            if (state.target.terminate) state.target.terminate();
            else state.target.end();
          },
          pause: () => state.target.pause(),
          resume: () => state.target.resume(),
          startTls: (done) => {
            const credentials = options.tls?.();
            if (!credentials) return done(false, "no TLS certificate configured");
            const [, tls] = socket.upgradeTLS({
              data: state,
              tls: { key: credentials.key, cert: credentials.cert },
              socket: {
                data: (_, bytes) => state.handlers?.data(bytes),
                drain: () => flush(state),
                close: () => closed(state),
                error: () => {},
                handshake: (_, success, error) => {
                  // Bun reports a missing client certificate as an error of a successful handshake.
                  if (success) done(true);
                  else {
                    done(false, error?.message ?? "TLS handshake failed");
                    tls.end();
                  }
                },
              },
            });
            state.target = tls;
          },
        };
        state.handlers = options.onConnection(client);
        // Bun may run the close callback inside end() or terminate(), before we get here.
        if (state.closed) state.handlers.close();
      },
      // After upgradeTLS Bun still hands the raw (encrypted) bytes to these handlers: only the
      // socket writes go to is listened to.
      data(socket, data) {
        if (socket.data.target === socket) socket.data.handlers?.data(data);
      },
      drain(socket) {
        if (socket.data.target === socket) flush(socket.data);
      },
      close(socket) {
        closed(socket.data);
      },
      error() {},
    },
  });
  return Promise.resolve({ host: options.host, port: server.port, close: () => server.stop(false) });
}
