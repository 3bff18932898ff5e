/** The one contract between mxscreen and a runtime's TCP server. */

export interface ClientSocket {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Queued in order; never throws for a socket the client closed. */
  write(data: string | Uint8Array): void;
  /** Close once everything written has been sent. */
  end(): void;
  /** Close at once, dropping anything unsent. */
  destroy(): void;
}

export interface ConnectionHandlers {
  /** Bytes from the client. The view may be reused by the runtime after the call: copy to keep. */
  data(bytes: Uint8Array): void;
  /** The connection is gone, whoever closed it. Called once. */
  close(): void;
}

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  /** Accepting stops past this many open connections (a runtime must never go deaf on EMFILE). */
  readonly maxConnections: number;
  readonly onConnection: (socket: ClientSocket) => ConnectionHandlers;
}

export interface Listener {
  readonly host: string;
  readonly port: number;
  /** Stops accepting; open connections are left to their owners. */
  close(): void;
}
