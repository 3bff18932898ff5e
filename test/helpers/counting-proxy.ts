import { connect, createServer, type Socket } from "node:net";

export interface CountingProxy {
  /** `http://127.0.0.1:port`: point the client at this instead of sqld. */
  readonly url: string;
  /** HTTP requests and bytes each way since the start or the last `reset()`. */
  counts(): { readonly requests: number; readonly bytesUp: number; readonly bytesDown: number };
  reset(): void;
  stop(): Promise<void>;
}

const REQUEST_LINE = /(?:GET|POST|PUT|DELETE) \/[^\r\n ]* HTTP\/1\.1\r\n/g;

/**
 * A TCP proxy on loopback in front of an HTTP server (sqld) that counts what a client costs it:
 * requests (request lines, keep-alive connections included) and bytes both ways. A request line
 * split across two reads is found by keeping the tail of the previous read.
 */
export async function startCountingProxy(targetPort: number): Promise<CountingProxy> {
  let requests = 0;
  let bytesUp = 0;
  let bytesDown = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    sockets.add(client).add(upstream);
    let tail = "";
    client.on("data", (chunk: Uint8Array) => {
      bytesUp += chunk.length;
      // Matches ending inside the kept tail were counted with the read before.
      const text = tail + new TextDecoder("latin1").decode(chunk);
      for (const match of text.matchAll(REQUEST_LINE)) if (match.index + match[0].length > tail.length) requests++;
      tail = text.slice(-200);
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Uint8Array) => {
      bytesDown += chunk.length;
      client.write(chunk);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", close).on("error", close);
    upstream.on("close", close).on("error", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () => ({ requests, bytesUp, bytesDown }),
    reset: () => {
      requests = 0;
      bytesUp = 0;
      bytesDown = 0;
    },
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
