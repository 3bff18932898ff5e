import { connect, isIP, type Socket } from "node:net";
import { connect as connectTls, type TLSSocket } from "node:tls";
import type { OutboundHandlers, OutboundSocket, TlsClientOptions } from "./types.ts";

/** A TCP connection to `host:port`, node:net's on both runtimes, with Nagle off (SMTP commands are small and answered one by one). */
export function connectTcp(host: string, port: number, handlers: OutboundHandlers): OutboundSocket {
  const socket = connect({ host, port });
  socket.setNoDelay(true);
  // Bytes go through `current`: the TCP socket, then the TLS socket on top of it after STARTTLS.
  let current: Socket | TLSSocket = socket;
  const data = (bytes: Uint8Array) => handlers.data(bytes);
  // Listen at once: Bun may deliver the greeting before an awaited "connect" resumes us.
  socket.on("data", data);
  socket.once("connect", () => handlers.connected());
  socket.on("error", (error) => handlers.lost(error.message));
  socket.on("close", () => handlers.lost("closed the connection"));
  // A half-close from the peer is the end of it: nothing more will be answered.
  socket.on("end", () => handlers.lost("closed the connection"));
  return {
    get destroyed() {
      return current.destroyed;
    },
    write: (bytes, sent) => void current.write(bytes, () => sent()),
    end: () => void current.end(),
    destroy: () => {
      current.destroy();
      socket.destroy();
    },
    startTls(options: TlsClientOptions, done: (failure: string | undefined) => void) {
      // The peer says nothing between its 220 and our ClientHello: no plaintext is left behind.
      socket.removeListener("data", data);
      const secure = connectTls({
        socket,
        // SNI carries names only; an address is checked against the certificate's IP entries.
        ...(isIP(options.host) === 0 ? { servername: options.host } : { host: options.host }),
        rejectUnauthorized: options.verify,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
      });
      current = secure;
      let settled = false;
      secure.once("secureConnect", () => {
        settled = true;
        done(undefined);
      });
      secure.on("data", data);
      secure.on("error", (error) => {
        if (settled) return handlers.lost(error.message);
        settled = true;
        done(error.message);
      });
      secure.on("close", () => handlers.lost("closed the connection"));
    },
  };
}
