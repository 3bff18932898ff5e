import { spawn } from "node:child_process";
import process from "node:process";
import { onCleanup } from "../harness.ts";
import { onFreePort } from "./on-free-port.ts";

/**
 * Names every test may rely on: the domains the tests send from and to can receive mail, and
 * 192.0.2.10 (TEST-NET-1: Deno answers PTR for 127/8 itself) has confirmed reverse DNS.
 */
export const BASE_RECORDS = [
  "--mx-host=example.net,mail.example.net,10",
  "--mx-host=example.org,mail.example.org,10",
  "--mx-host=example.com,mail.example.com,10",
  "--host-record=mail.example.net,192.0.2.25",
  "--host-record=mail.example.org,192.0.2.26",
  "--host-record=mail.example.com,192.0.2.27",
];

export interface DnsServer {
  /** `127.0.0.1:port`, for MXSCREEN_DNS. */
  readonly address: string;
  readonly log: string[];
  stop(): Promise<void>;
}

/**
 * Debian's dnsmasq on a free loopback port, answering only from `records` (its own options:
 * --host-record, --mx-host, --address, --ptr-record, ...) and BASE_RECORDS. Every other name
 * is NXDOMAIN (--local=/#/), nothing is forwarded: test traffic never reaches a real resolver.
 */
export function startDnsmasq(records: readonly string[] = []): Promise<DnsServer> {
  return onFreePort((port) => launch(port, records));
}

async function launch(port: number, records: readonly string[]): Promise<DnsServer> {
  const child = spawn("dnsmasq", [
    "--no-daemon",
    "--no-resolv",
    "--no-hosts",
    "--conf-file=/dev/null",
    "--pid-file=",
    `--port=${port}`,
    "--listen-address=127.0.0.1",
    "--bind-interfaces",
    "--local=/#/",
    "--log-queries",
    "--log-facility=-",
    ...BASE_RECORDS,
    ...records,
  ], { stdio: ["ignore", "pipe", "pipe"] });
  const log: string[] = [];
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const started = new Promise<void>((resolve, reject) => {
    child.on("error", (error) => reject(new Error(`cannot run dnsmasq (${error.message}): install Debian's dnsmasq-base package`)));
    const timer = setTimeout(() => reject(new Error(`dnsmasq did not start within 5 s:\n${log.join("")}`)), 5000);
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      log.push(chunk);
      if (/started, version/.test(log.join(""))) {
        clearTimeout(timer);
        resolve();
      }
    });
    exited.then(() => reject(new Error(`dnsmasq exited at start:\n${log.join("")}`)));
  });
  const server: DnsServer = {
    address: `127.0.0.1:${port}`,
    log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(child.pid!, "SIGTERM");
      await exited;
    },
  };
  onCleanup(() => server.stop());
  await started;
  return server;
}
