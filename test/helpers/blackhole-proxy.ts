import { connect, createServer, type Socket } from "node:net";
import { onCleanup } from "../harness.ts";

export interface BlackholeProxy {
  /** `http://127.0.0.1:port`: what to give a node as MXSCREEN_DB_URL or MXSCREEN_DB_SYNC_URL. */
  readonly url: string;
  /**
   * From now on nothing passes, either way, on the connections open and on new ones, which are
   * still accepted and read: what a client sees of a link that drops its packets.
   */
  blackhole(): void;
  /** New connections pass again; the ones open during the blackhole stay dead, as after a real one. */
  restore(): void;
  stop(): Promise<void>;
}

/**
 * A TCP proxy on loopback in front of `targetPort` (a test's sqld) that can drop everything
 * without closing anything: no RST, no FIN, no answer. The kernel has no netem here, and a
 * proxy keeps every packet on the machine.
 */
export async function startBlackholeProxy(targetPort: number): Promise<BlackholeProxy> {
  let dropping = false;
  const sockets = new Set<Socket>();
  /** Pairs made before the current blackhole: they never forward again. */
  const dead = new WeakSet<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  };
  const server = createServer((client) => {
    track(client);
    if (dropping) {
      dead.add(client);
      client.on("data", () => {});
      return;
    }
    const upstream = connect({ port: targetPort, host: "127.0.0.1" });
    track(upstream);
    const pending: Uint8Array[] = [];
    let connected = false;
    upstream.on("connect", () => {
      connected = true;
      for (const chunk of pending.splice(0)) upstream.write(chunk);
    });
    client.on("data", (chunk: Uint8Array) => {
      if (dead.has(client)) return;
      if (connected) upstream.write(chunk);
      else pending.push(chunk);
    });
    upstream.on("data", (chunk: Uint8Array) => {
      if (!dead.has(client)) client.write(chunk);
    });
    // A refused or closed target is passed on as it would be without the proxy: unless dropping.
    upstream.on("close", () => {
      if (!dead.has(client)) client.destroy();
    });
    client.on("close", () => upstream.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  let stopped = false;
  const proxy: BlackholeProxy = {
    url: `http://127.0.0.1:${port}`,
    blackhole() {
      dropping = true;
      for (const socket of sockets) dead.add(socket);
    },
    restore() {
      dropping = false;
    },
    stop() {
      if (stopped) return Promise.resolve();
      stopped = true;
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  onCleanup(() => proxy.stop());
  return proxy;
}
