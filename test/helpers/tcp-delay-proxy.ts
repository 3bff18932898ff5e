import { connect, createServer, type Socket } from "node:net";
import { onCleanup } from "../harness.ts";

export interface TcpDelayProxy {
  /** `http://127.0.0.1:port`: what to give a node as MXSCREEN_DB_URL instead of sqld's own. */
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * A TCP proxy on loopback in front of `targetPort` (a test's sqld) that holds every chunk
 * `delayMs` before passing it on, each way, in order: a database `2 × delayMs` of round trip
 * away, as a region's distance, without netem (this kernel has none) and without a packet
 * leaving the machine.
 */
export async function startTcpDelayProxy(targetPort: number, delayMs: number): Promise<TcpDelayProxy> {
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const later = (fn: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, delayMs);
    timers.add(timer);
  };
  const relay = (from: Socket, to: Socket) => {
    from.on("data", (chunk: Uint8Array) => later(() => to.destroyed || to.write(chunk)));
    from.on("end", () => later(() => to.end()));
    from.on("close", () => later(() => to.destroy()));
  };
  const server = createServer((client) => {
    const upstream = connect({ port: targetPort, host: "127.0.0.1" });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => sockets.delete(socket));
    }
    relay(client, upstream);
    relay(upstream, client);
  });
  const port = await new Promise<number>((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
  });
  const proxy: TcpDelayProxy = {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  onCleanup(() => proxy.stop());
  return proxy;
}
