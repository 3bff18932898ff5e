/** A PROXY v2 header as HAProxy sends it: the signature, PROXY over TCP, the client's address and port. */
export const PROXY_V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

export function proxyV2(source: number[], sourcePort: number, command = 0x21): Uint8Array {
  const v6 = source.length === 16;
  const body = [...source, ...(v6 ? new Array(16).fill(0) : [127, 0, 0, 1]), sourcePort >> 8, sourcePort & 255, 0, 25];
  return Uint8Array.from([...PROXY_V2_SIGNATURE, command, v6 ? 0x21 : 0x11, body.length >> 8, body.length & 255, ...body]);
}
