import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { onCleanup } from "../harness.ts";

export interface DelayProxy {
  /** `127.0.0.1:port`: what to point the client at (MXSCREEN_DNS). */
  readonly address: string;
  readonly port: number;
  /** The names asked about so far, as they arrived (before their delay). */
  readonly questions: () => readonly string[];
  stop(): Promise<void>;
}

const LOOPBACK = "127.0.0.1";

function splitAddress(target: string): { host: string; port: number } {
  const at = target.lastIndexOf(":");
  return { host: target.slice(0, at), port: Number(target.slice(at + 1)) };
}

/** The name in a DNS query's question section (RFC 1035 4.1.2), for tests to see what was asked. */
function questionName(packet: Uint8Array): string {
  const labels: string[] = [];
  for (let at = 12; at < packet.length && packet[at] !== 0 && labels.length < 128; at += packet[at] + 1) {
    labels.push(new TextDecoder().decode(packet.subarray(at + 1, at + 1 + packet[at])));
  }
  return labels.join(".");
}

/**
 * A UDP proxy on loopback that holds each question `delayMs` before passing it to `target`
 * (a test's dnsmasq) and sends the answer straight back: a slow resolver that still answers.
 */
export async function startUdpDelayProxy(target: string, delayMs: number): Promise<DelayProxy> {
  const server = splitAddress(target);
  const front = createSocket("udp4");
  // One socket towards the server per client address, so each answer finds its way back.
  const backs = new Map<string, UdpSocket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const questions: string[] = [];
  front.on("message", (question, client) => {
    questions.push(questionName(question));
    const key = `${client.address}:${client.port}`;
    let back = backs.get(key);
    if (!back) {
      back = createSocket("udp4");
      back.on("message", (answer) => front.send(answer, client.port, client.address));
      back.on("error", () => {});
      backs.set(key, back);
    }
    const socket = back;
    const timer = setTimeout(() => {
      timers.delete(timer);
      socket.send(question, server.port, server.host);
    }, delayMs);
    timers.add(timer);
  });
  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.bind(0, LOOPBACK, () => resolve());
  });
  const port = front.address().port;
  let stopped = false;
  const proxy: DelayProxy = {
    address: `${LOOPBACK}:${port}`,
    port,
    questions: () => questions,
    stop() {
      if (stopped) return Promise.resolve();
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      for (const back of backs.values()) back.close();
      front.close();
      return Promise.resolve();
    },
  };
  onCleanup(() => proxy.stop());
  return proxy;
}
