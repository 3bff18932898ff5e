import type { DeliveryResult } from "../smtp/types.ts";
import { fcrdnsHeader, receivedHeader } from "./received.ts";
import type { MessageContext, OutgoingMessage } from "./types.ts";
import type { Upstream } from "./upstream.ts";

const encoder = new TextEncoder();

/**
 * A message streamed to the upstream as it arrives (memory stays bounded whatever its size),
 * behind our trace headers. Its result is the upstream's own verdict: the client hears `250`
 * only when the upstream said `250`, and a failure midway is a temporary one.
 */
export function relayMessage(upstream: Upstream, context: MessageContext): OutgoingMessage {
  const id = `R${context.receivedAt.getTime().toString(36).toUpperCase()}`;
  upstream.writeData(encoder.encode(receivedHeader(context, id) + fcrdnsHeader(context)));
  return {
    id,
    write: (bytes) => upstream.writeData(bytes),
    finish: async (): Promise<DeliveryResult> => {
      const answer = await upstream.endData();
      if (!answer.ok) return { ok: false, temporary: true, reason: `the upstream failed during the message (${answer.reason})` };
      const reply = answer.reply;
      const queued = /queued as (\S+)/i.exec(reply.text)?.[1] ?? id;
      if (reply.code >= 200 && reply.code < 300) return { ok: true, id: queued, reply: reply.text };
      return { ok: false, temporary: reply.code < 500, reason: reply.text.trim(), reply: reply.text };
    },
    abort: () => {
      upstream.abort();
      return Promise.resolve();
    },
  };
}
