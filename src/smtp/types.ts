/** Contracts of the sans-I/O SMTP core: what goes in (bytes, time, facts) and what comes out. */

export interface SessionConfig {
  readonly hostname: string;
  readonly maxMessageSize: number;
  readonly maxLineLength: number;
  readonly maxRecipients: number;
  readonly commandTimeoutMs: number;
  readonly dataTimeoutMs: number;
  readonly pipelining: boolean;
  /** Empty means any domain. */
  readonly acceptDomains: readonly string[];
  /** STARTTLS is offered (a certificate is configured). */
  readonly tls: boolean;
}

export interface ClientInfo {
  readonly address: string;
  readonly port: number;
}

export interface Envelope {
  readonly helo: string;
  /** RFC 3848: ESMTPS once the session runs over TLS. */
  readonly protocol: "SMTP" | "ESMTP" | "ESMTPS";
  /** Empty string for the null sender `<>`. */
  readonly from: string;
  readonly recipients: readonly string[];
  readonly declaredSize: number | undefined;
}

export type Output =
  | { readonly type: "reply"; readonly text: string }
  /** Close once the replies before it are written. */
  | { readonly type: "close" }
  | { readonly type: "message-begin"; readonly envelope: Envelope }
  /** Message content, dot-unstuffed, whole lines ending in CRLF. */
  | { readonly type: "message-data"; readonly bytes: Uint8Array }
  /** The message is complete: deliver it, then call `delivered()` with the outcome. */
  | { readonly type: "message-end" }
  /** Drop what was begun: the client gets an error reply for it. */
  | { readonly type: "message-abort" }
  /** Start the TLS handshake now (the go-ahead was the reply before), then call `tlsStarted()`. */
  | { readonly type: "starttls" };

export type DeliveryResult =
  | { readonly ok: true; readonly id: string }
  | { readonly ok: false; readonly temporary: boolean; readonly reason: string };

export type EndReason = "quit" | "client-closed" | "timeout" | "errors" | "shutdown";

/** What the session saw, for the connection's one log line and its verdict. */
export interface SessionFacts {
  helo: string | undefined;
  commands: number;
  errors: number;
  unknownCommands: number;
  bareLineFeeds: number;
  /** Bytes sent after STARTTLS before the handshake: discarded, never executed (CVE-2011-0411). */
  injectedBytes: number;
  tls: boolean;
  recipients: number;
  messages: number;
  lastReply: string | undefined;
  end: EndReason | undefined;
}
