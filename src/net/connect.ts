import { connect } from "node:net";
import type { OutboundHandlers, OutboundSocket } from "./types.ts";

/** A TCP connection to `host:port`, node:net's on both runtimes, with Nagle off (SMTP commands are small and answered one by one). */
export function connectTcp(host: string, port: number, handlers: OutboundHandlers): OutboundSocket {
  const socket = connect({ host, port });
  socket.setNoDelay(true);
  // Listen at once: Bun may deliver the greeting before an awaited "connect" resumes us.
  socket.on("data", (bytes: Uint8Array) => handlers.data(bytes));
  socket.once("connect", () => handlers.connected());
  socket.on("error", (error) => handlers.lost(error.message));
  socket.on("close", () => handlers.lost("closed the connection"));
  // A half-close from the peer is the end of it: nothing more will be answered.
  socket.on("end", () => handlers.lost("closed the connection"));
  return {
    get destroyed() {
      return socket.destroyed;
    },
    write: (bytes, sent) => void socket.write(bytes, () => sent()),
    end: () => void socket.end(),
    destroy: () => void socket.destroy(),
  };
}
