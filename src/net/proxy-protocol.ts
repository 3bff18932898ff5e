import { type IP, parseIP } from "../ip/address.ts";

/**
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2), sans I/O: a
 * load balancer in front of mxscreen sends it first, naming the real client.
 */

export type ProxyHeader =
  | { readonly status: "incomplete" }
  | { readonly status: "invalid"; readonly reason: string }
  /** `source` is undefined for v2 LOCAL and v1 UNKNOWN: the proxy speaks for itself (health checks). */
  | {
    readonly status: "ok";
    readonly version: 1 | 2;
    readonly source: { address: string; port: number } | undefined;
    /** The address the client connected to, at the proxy: what the upstream should hear as its own. */
    readonly destination: { address: string; port: number } | undefined;
    readonly length: number;
  };

const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const V1_PREFIX = "PROXY ";
/** proxy-protocol.txt 2.1: a v1 header is at most 107 bytes, CRLF included. */
const V1_MAX = 107;
/** What a v2 header may carry beyond the addresses (TLVs) before we call it absurd. */
const V2_MAX_LENGTH = 1024;

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean | "maybe" {
  const n = Math.min(bytes.length, prefix.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== prefix[i]) return false;
  return n < prefix.length ? "maybe" : true;
}

/** True when `bytes` begin like a PROXY header of either version (to tell a misconfigured proxy from ratware). */
export function looksLikeProxyHeader(bytes: Uint8Array): boolean {
  const v1 = [...V1_PREFIX].map((c) => c.charCodeAt(0));
  return startsWith(bytes, V2_SIGNATURE) === true || startsWith(bytes, v1) === true;
}

export function parseProxyHeader(bytes: Uint8Array): ProxyHeader {
  const v2 = startsWith(bytes, V2_SIGNATURE);
  if (v2 === true) return parseV2(bytes);
  const v1 = startsWith(bytes, [...V1_PREFIX].map((c) => c.charCodeAt(0)));
  if (v1 === true) return parseV1(bytes);
  if (v1 === "maybe" || v2 === "maybe") return { status: "incomplete" };
  return { status: "invalid", reason: "no PROXY header where one was expected" };
}

function parseV1(bytes: Uint8Array): ProxyHeader {
  const end = bytes.subarray(0, V1_MAX).indexOf(0x0a);
  if (end < 0) {
    return bytes.length >= V1_MAX ? { status: "invalid", reason: "PROXY v1 header longer than 107 bytes" } : { status: "incomplete" };
  }
  if (end === 0 || bytes[end - 1] !== 0x0d) return { status: "invalid", reason: "PROXY v1 header not ended by CRLF" };
  const line = new TextDecoder().decode(bytes.subarray(0, end - 1));
  const parts = line.split(" ");
  if (parts[1] === "UNKNOWN") return { status: "ok", version: 1, source: undefined, destination: undefined, length: end + 1 };
  if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) {
    return { status: "invalid", reason: `PROXY v1 header malformed: ${JSON.stringify(line.slice(0, 60))}` };
  }
  const [, family, source, destination, sourcePort, destinationPort] = parts;
  const ipv4 = (text: string) => /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(text);
  const portOf = (text: string) => /^\d{1,5}$/.test(text) && Number(text) <= 65535 ? Number(text) : -1;
  const valid = (address: string, port: number) =>
    (family === "TCP4") === ipv4(address) && (ipv4(address) || /^[0-9a-fA-F:.]+$/.test(address)) && port >= 0;
  const port = portOf(sourcePort);
  const toPort = portOf(destinationPort);
  if (!valid(source, port) || !valid(destination, toPort)) {
    return { status: "invalid", reason: `PROXY v1 header malformed: ${JSON.stringify(line.slice(0, 60))}` };
  }
  return {
    status: "ok",
    version: 1,
    source: { address: source, port },
    destination: { address: destination, port: toPort },
    length: end + 1,
  };
}

function parseV2(bytes: Uint8Array): ProxyHeader {
  if (bytes.length < 16) return { status: "incomplete" };
  const versionCommand = bytes[12];
  if (versionCommand >> 4 !== 2) return { status: "invalid", reason: `PROXY v2 header with version ${versionCommand >> 4}` };
  const command = versionCommand & 0x0f;
  const familyProtocol = bytes[13];
  const length = (bytes[14] << 8) | bytes[15];
  if (length > V2_MAX_LENGTH) return { status: "invalid", reason: `PROXY v2 header claims ${length} bytes` };
  if (bytes.length < 16 + length) return { status: "incomplete" };
  const total = 16 + length;
  if (command === 0) return { status: "ok", version: 2, source: undefined, destination: undefined, length: total };
  if (command !== 1) return { status: "invalid", reason: `PROXY v2 header with command ${command}` };
  const body = bytes.subarray(16, total);
  if (familyProtocol === 0x11 && length >= 12) {
    const address = (at: number) => `${body[at]}.${body[at + 1]}.${body[at + 2]}.${body[at + 3]}`;
    const source = { address: address(0), port: (body[8] << 8) | body[9] };
    return { status: "ok", version: 2, source, destination: { address: address(4), port: (body[10] << 8) | body[11] }, length: total };
  }
  if (familyProtocol === 0x21 && length >= 36) {
    const address = (at: number) =>
      Array.from({ length: 8 }, (_, i) => ((body[at + 2 * i] << 8) | body[at + 2 * i + 1]).toString(16)).join(":");
    const source = { address: address(0), port: (body[32] << 8) | body[33] };
    return { status: "ok", version: 2, source, destination: { address: address(16), port: (body[34] << 8) | body[35] }, length: total };
  }
  if (familyProtocol === 0x00) return { status: "ok", version: 2, source: undefined, destination: undefined, length: total };
  return { status: "invalid", reason: `PROXY v2 header with unsupported family/protocol 0x${familyProtocol.toString(16)}` };
}

/** A PROXY v2 header (PROXY command, TCP) naming `source` as the client, for an upstream behind us. */
export function encodeProxyV2(source: { address: string; port: number }, destination: { address: string; port: number }): Uint8Array {
  const client = parseIP(source.address);
  if (!client) throw new Error(`cannot name ${JSON.stringify(source.address)} in a PROXY header: not an IP address`);
  const octets = (ip: IP | null, family: 4 | 6): number[] => {
    if (ip?.family === 4 && family === 4) return [ip.value >>> 24, (ip.value >>> 16) & 255, (ip.value >>> 8) & 255, ip.value & 255];
    if (ip?.family === 6 && family === 6) return ip.groups.flatMap((g) => [g >> 8, g & 255]);
    return new Array(family === 4 ? 4 : 16).fill(0);
  };
  const server = parseIP(destination.address);
  const body = [
    ...octets(client, client.family),
    ...octets(server, client.family),
    source.port >> 8,
    source.port & 255,
    destination.port >> 8,
    destination.port & 255,
  ];
  return Uint8Array.from([...V2_SIGNATURE, 0x21, client.family === 6 ? 0x21 : 0x11, body.length >> 8, body.length & 255, ...body]);
}
