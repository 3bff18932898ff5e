import { Rng } from "./rng.ts";

/**
 * Replies an upstream MTA may give, well formed (RFC 5321 4.2) but varied: the codes it may
 * answer any command with, with or without an enhanced status code, one line or several, short
 * or up to the 512-octet line limit. `variant` picks one; the same variant gives the same reply.
 */
export function upstreamReply(command: string, variant: number): { code: number; text: string } {
  const rng = new Rng(variant);
  const expected = /^DATA/i.test(command) ? 354 : 250;
  const code = rng.weighted<number>([
    [6, expected],
    [1, 251],
    [1, 221],
    [2, 421],
    [2, 450],
    [2, 451],
    [1, 452],
    [3, 550],
    [1, 552],
    [1, 553],
    [2, 554],
    [1, 555],
    [1, 354],
    [1, 250],
  ]);
  const enhanced = code === 354 || rng.chance(0.2) ? "" : `${Math.floor(code / 100)}.${rng.between(0, 7)}.${rng.between(0, 9)} `;
  const lines = rng.chance(0.15) ? rng.between(2, 4) : 1;
  let text = "";
  for (let i = 0; i < lines; i++) {
    const room = 512 - 2 - 4 - enhanced.length;
    const length = rng.chance(0.05) ? room : rng.between(0, 40);
    text += `${code}${i === lines - 1 ? " " : "-"}${enhanced}${printable(rng, length)}\r\n`;
  }
  return { code, text };
}

function printable(rng: Rng, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += String.fromCharCode(rng.between(0x20, 0x7e));
  return out;
}
