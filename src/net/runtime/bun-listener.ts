import type { ClientSocket, ConnectionHandlers, Listener, ListenOptions } from "../types.ts";

/** The part of Bun's socket API we use, typed here so nothing else needs Bun's types. */
interface BunSocket {
  readonly remoteAddress: string;
  readonly remotePort?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
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
  /** The peer sent a FIN; with allowHalfOpen the socket stays writable. */
  end(socket: BunSocket): void;
  drain(socket: BunSocket): void;
  close(socket: BunSocket): void;
  error(socket: BunSocket, error: Error): void;
  handshake?(socket: BunSocket, success: boolean, error: Error | null): void;
}

interface BunServer {
  readonly port: number;
  stop(closeActive?: boolean): void;
}

interface BunListenApi {
  listen(
    options: {
      hostname: string;
      port: number;
      reusePort: boolean;
      allowHalfOpen: boolean;
      socket: BunHandlers & { open(socket: BunSocket): void };
    },
  ): BunServer;
}

const encoder = new TextEncoder();

/**
 * One connection: its state and the ClientSocket methods in one object, so that a held client
 * costs one object and no closures (memory per held connection is what this listener is for).
 */
class BunConnection implements ClientSocket {
  handlers: ConnectionHandlers | undefined;
  /** The socket writes go to: the raw one, then the TLS one after STARTTLS. */
  target: BunSocket;
  /** Bytes the kernel did not take yet, written on drain. */
  pending: Uint8Array[] | undefined;
  ending = false;
  closed = false;

  constructor(private readonly raw: BunSocket, private readonly tls: ListenOptions["tls"], private readonly onClosed: () => void) {
    this.target = raw;
  }

  get remoteAddress(): string {
    return this.raw.remoteAddress;
  }

  get remotePort(): number {
    return this.raw.remotePort ?? 0;
  }

  get localAddress(): string {
    return this.raw.localAddress ?? "";
  }

  get localPort(): number {
    return this.raw.localPort ?? 0;
  }

  write(data: string | Uint8Array): void {
    if (this.closed || this.ending) return;
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    if (this.pending !== undefined) {
      this.pending.push(bytes.slice());
      return;
    }
    const written = this.target.write(bytes);
    if (written < bytes.length) this.pending = [bytes.slice(Math.max(0, written))];
  }

  end(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    if (this.pending === undefined) this.target.end();
  }

  destroy(): void {
    if (this.closed) return;
    this.pending = undefined;
    if (this.target.terminate) this.target.terminate();
    else this.target.end();
  }

  pause(): void {
    this.target.pause();
  }

  resume(): void {
    this.target.resume();
  }

  startTls(done: (ok: boolean, error?: string) => void): void {
    const credentials = this.tls?.();
    if (!credentials) return done(false, "no TLS certificate configured");
    const [, tls] = this.raw.upgradeTLS({
      data: this,
      tls: { key: credentials.key, cert: credentials.cert },
      socket: {
        data: (_, bytes) => this.handlers?.data(bytes),
        end: () => this.handlers?.end(),
        drain: () => this.flush(),
        close: () => this.close(),
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
    this.target = tls;
  }

  flush(): void {
    while (this.pending !== undefined && this.pending.length > 0) {
      const head = this.pending[0];
      const written = this.target.write(head);
      if (written < head.length) {
        this.pending[0] = head.subarray(Math.max(0, written));
        return;
      }
      this.pending.shift();
    }
    this.pending = undefined;
    if (this.ending) this.target.end();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed();
    this.handlers?.close();
  }
}

/** Bun.listen: about a quarter of node:net's memory per held connection on Bun (bench/README.md). */
export function bunListen(bun: BunListenApi, options: ListenOptions): Promise<Listener> {
  let open = 0;
  const onClosed = () => open--;
  const server = bun.listen({
    hostname: options.host,
    port: options.port,
    reusePort: options.reusePort ?? false,
    // Half-open: a client that sent its last command and shut down its side still gets the answers.
    allowHalfOpen: true,
    socket: {
      open(socket) {
        open++;
        const connection = new BunConnection(socket, options.tls, onClosed);
        socket.data = connection;
        if (open > options.maxConnections) {
          socket.end();
          return;
        }
        connection.handlers = options.onConnection(connection);
        // Bun may run the close callback inside end() or terminate(), before we get here.
        if (connection.closed) connection.handlers.close();
      },
      // After upgradeTLS Bun still hands the raw (encrypted) bytes to these handlers: only the
      // socket writes go to is listened to.
      data(socket, data) {
        if (socket.data.target === socket) socket.data.handlers?.data(data);
      },
      end(socket) {
        if (socket.data.target === socket) socket.data.handlers?.end();
      },
      drain(socket) {
        if (socket.data.target === socket) socket.data.flush();
      },
      close(socket) {
        socket.data.close();
      },
      error() {},
    },
  });
  return Promise.resolve({ host: options.host, port: server.port, close: () => server.stop(false) });
}
