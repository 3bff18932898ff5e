import type { ReverseDns } from "../dns/types.ts";
import { formatPrefix, mask, parseIP } from "../ip/address.ts";

/**
 * The greylist triplet: the client's network (its forward-confirmed domain minus the first
 * label, so a sender pool retrying from another address is not delayed again; else its
 * /24 or /64), the sender and the recipient.
 */
export function greylistTriplet(clientAddress: string, reverse: ReverseDns | undefined, sender: string, recipient: string): string {
  const labels = reverse?.status === "pass" ? reverse.name.split(".") : [];
  const ip = parseIP(clientAddress);
  const network = labels.length >= 3
    ? labels.slice(1).join(".")
    : ip === null ? clientAddress : formatPrefix({ ip: mask(ip, ip.family === 4 ? 24 : 64), length: ip.family === 4 ? 24 : 64 });
  return `${network} <${sender.toLowerCase()}> <${recipient.toLowerCase()}>`;
}
