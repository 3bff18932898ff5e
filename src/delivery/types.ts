import type { DeliveryResult, Envelope } from "../smtp/types.ts";

export interface MessageContext {
  readonly envelope: Envelope;
  readonly clientAddress: string;
  readonly receivedAt: Date;
  readonly hostname: string;
}

/** One message on its way out: content is written as it arrives, in order. */
export interface OutgoingMessage {
  readonly id: string;
  write(bytes: Uint8Array): void;
  /** Resolves once the message is safe (fsynced, or the upstream said 250), or why not. */
  finish(): Promise<DeliveryResult>;
  /** Leaves nothing behind. */
  abort(): Promise<void>;
}

export interface Deliverer {
  /** `congested(true)` while the message waits for the disk faster than it is written; `false` once it caught up. */
  begin(context: MessageContext, congested?: (yes: boolean) => void): OutgoingMessage;
}
