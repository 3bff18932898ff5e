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
  // Held until the content's first bytes, which go in the same socket write: one write less per
  // message here and one read less at the upstream than sending them on the upstream's 354.
  let headers: Uint8Array | undefined = encoder.encode(receivedHeader(context, id) + fcrdnsHeader(context));
  const writeHeaders = () => {
    if (headers !== undefined) upstream.writeData(headers);
    headers = undefined;
  };
  return {
    id,
    write: (bytes) => {
      writeHeaders();
      upstream.writeData(bytes);
    },
    finish: async (): Promise<DeliveryResult> => {
      writeHeaders();
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
