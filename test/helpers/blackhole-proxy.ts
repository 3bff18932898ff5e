import { connect, createServer, type Socket } from "node:net";
import { onCleanup } from "../harness.ts";

export interface BlackholeProxy {
  /** `http://127.0.0.1:port`: what to give a node as MXSCREEN_DB_URL or MXSCREEN_DB_SYNC_URL. */
  readonly url: string;
  /**
   * From now on nothing passes, either way, on the connections open and on new ones, which are
   * still accepted: what a client sees of a link that drops its packets. Nothing is closed.
   */
  blackhole(): void;
  /**
   * Everything held passes again, as TCP's retransmissions deliver it once a link is back:
   * open connections go on where they stopped, those accepted meanwhile reach the target.
   */
  restore(): void;
  stop(): Promise<void>;
}

/**
 * A TCP proxy on loopback in front of `targetPort` (a test's sqld) that can stop passing
 * anything without closing anything: no RST, no FIN, no answer. The kernel has no netem here,
 * and a proxy keeps every packet on the machine. While it drops, it reads nothing, so what the
 * client sends waits in the socket buffers as it would wait for retransmission.
 */
export async function startBlackholeProxy(targetPort: number): Promise<BlackholeProxy> {
  let dropping = false;
  const sockets = new Set<Socket>();
  /** Connections accepted while dropping: they reach the target once the link is back. */
  const held = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    if (dropping) socket.pause();
  };
  const pass = (client: Socket) => {
    const upstream = connect({ port: targetPort, host: "127.0.0.1" });
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    // A refused or closed target is passed on as it would be without the proxy.
    upstream.on("close", () => client.destroy());
  };
  const server = createServer((client) => {
    track(client);
    if (dropping) {
      held.add(client);
      client.on("close", () => held.delete(client));
    } else pass(client);
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
      for (const socket of sockets) socket.pause();
    },
    restore() {
      dropping = false;
      for (const client of held) pass(client);
      held.clear();
      for (const socket of sockets) socket.resume();
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
