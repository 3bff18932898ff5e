/** The one contract between mxscreen and a runtime's TCP server. */

export interface ClientSocket {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The address and port the client connected to (ours). */
  readonly localAddress: string;
  readonly localPort: number;
  /** Queued in order; never throws for a socket the client closed. */
  write(data: string | Uint8Array): void;
  /** Close once everything written has been sent. */
  end(): void;
  /** Close at once, dropping anything unsent. */
  destroy(): void;
  /** Stop reading from the client until `resume()`: backpressure when what it sends cannot go on as fast. */
  pause(): void;
  resume(): void;
  /**
   * Turns this connection into a TLS server session (STARTTLS) with the credentials of the
   * moment. Write the go-ahead reply before calling it; from then on `data` carries decrypted
   * bytes and writes are encrypted. `done` reports the handshake's outcome.
   */
  startTls(done: (ok: boolean, error?: string) => void): void;
}

export interface TlsCredentials {
  readonly key: string;
  readonly cert: string;
}

export interface ConnectionHandlers {
  /** Bytes from the client. The view may be reused by the runtime after the call: copy to keep. */
  data(bytes: Uint8Array): void;
  /**
   * The client shut down its sending side (a FIN): nothing more will come, but it still reads.
   * Everything it sent must still be answered before we close (Exim sends `.`, QUIT, then FIN).
   */
  end(): void;
  /** The connection is gone, whoever closed it. Called once. */
  close(): void;
}

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  /** Accepting stops past this many open connections (a runtime must never go deaf on EMFILE). */
  readonly maxConnections: number;
  /** This process's open-files limit. */
  readonly openFiles: number;
  /** Share the port with other processes (SO_REUSEPORT): the kernel spreads connections over them. */
  readonly reusePort?: boolean;
  /** The listener had stopped accepting and was opened again (or could not be): `message` says what happened. */
  readonly onRelisten?: (message: string) => void;
  /** The certificate and key to use for STARTTLS now (they can be reloaded); undefined: no TLS. */
  readonly tls?: () => TlsCredentials | undefined;
  readonly onConnection: (socket: ClientSocket) => ConnectionHandlers;
}

export interface Listener {
  readonly host: string;
  readonly port: number;
  /** Stops accepting; open connections are left to their owners. */
  close(): void;
}

/** What happens on a connection we opened, reported as it happens. */
export interface OutboundHandlers {
  connected(): void;
  /** Bytes from the peer. The view may be reused by the runtime after the call: copy to keep. */
  data(bytes: Uint8Array): void;
  /** The connection failed, closed or was half-closed by the peer: nothing more will come. May be called more than once. */
  lost(reason: string): void;
}

/** A TCP connection we opened (to the MTA behind us). */
export interface OutboundSocket {
  readonly destroyed: boolean;
  /** Queued in order; `sent` is called once the bytes left for the kernel (writes' return values do not say so on Bun and Deno). */
  write(bytes: Uint8Array, sent: () => void): void;
  /** Close once everything written has been sent. */
  end(): void;
  /** Close at once, dropping anything unsent. */
  destroy(): void;
  /**
   * Starts TLS as the client on this connection (after the peer's `220` to STARTTLS); `done`
   * once the handshake is over, with why it failed. From then on every byte goes through TLS.
   */
  startTls(options: TlsClientOptions, done: (failure: string | undefined) => void): void;
}

export interface TlsClientOptions {
  /** The peer's host name or address: sent as SNI (names only) and checked against its certificate when `verify`. */
  readonly host: string;
  /** Refuse a certificate that does not chain to `ca` (or the system store) and name `host`. */
  readonly verify: boolean;
  /** PEM certificates trusted instead of the system store. */
  readonly ca: string | undefined;
}
