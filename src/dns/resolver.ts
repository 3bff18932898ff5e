import { Resolver } from "node:dns/promises";
import type { DnsAnswer, DnsClient, DnsType } from "./types.ts";

/** Error codes that mean "no such records" rather than "no answer": Deno and Bun say ENOTFOUND where Node says ENODATA. */
const NO_RECORDS = new Set(["ENOTFOUND", "ENODATA"]);

/**
 * node:dns's Resolver (the same on Deno and Bun) pointed at MXSCREEN_DNS, or at the system's
 * servers when unset, with our own timeout so that no lookup can hold a session for long.
 */
/** Told of every lookup: its record type, how it ended, how long it took and the name asked (for the metrics). */
export type DnsObserver = (type: DnsType, status: DnsAnswer["status"], seconds: number, name: string) => void;

export function createDnsClient(server: { host: string; port: number } | undefined, timeoutMs: number, observe?: DnsObserver): DnsClient {
  const resolver = new Resolver();
  if (server) resolver.setServers([server.host.includes(":") ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`]);
  const ask = async (name: string, type: DnsType): Promise<DnsAnswer> => {
    switch (type) {
      case "A":
      case "AAAA": {
        const found = type === "A" ? await resolver.resolve4(name, { ttl: true }) : await resolver.resolve6(name, { ttl: true });
        return { status: "ok", records: found.map((r) => r.address), ttl: Math.min(...found.map((r) => r.ttl)) };
      }
      case "MX": {
        const found = await resolver.resolveMx(name);
        return { status: "ok", records: found.map((r) => (r.exchange === "" ? "." : r.exchange.toLowerCase())), ttl: 0 };
      }
      case "PTR": {
        const found = await resolver.resolvePtr(name);
        return { status: "ok", records: found.map((n) => n.toLowerCase().replace(/\.$/, "")), ttl: 0 };
      }
    }
  };
  return {
    async query(name, type) {
      const started = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<DnsAnswer>((resolve) => {
        timer = setTimeout(() => resolve({ status: "error", reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
      });
      try {
        const answer = await Promise.race([
          ask(name, type).catch((error: { code?: string; message?: string }): DnsAnswer =>
            NO_RECORDS.has(error.code ?? "") ? { status: "nxdomain" } : { status: "error", reason: error.code ?? String(error.message) }
          ),
          timeout,
        ]);
        observe?.(type, answer.status, (performance.now() - started) / 1000, name);
        return answer;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
