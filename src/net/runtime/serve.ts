/** HTTP serving for the admin API, behind one function: Deno.serve or Bun.serve, with the peer address. */

export type Fetch = (request: Request, peer: { address: string }) => Response | Promise<Response>;

export interface HttpServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

interface DenoServeApi {
  serve(
    options: { hostname: string; port: number; onListen?: (addr: { port: number }) => void; signal?: AbortSignal },
    handler: (request: Request, info: { remoteAddr: { hostname: string } }) => Response | Promise<Response>,
  ): { finished: Promise<void>; addr: { port: number }; shutdown(): Promise<void> };
}

interface BunServeApi {
  serve(options: {
    hostname: string;
    port: number;
    fetch(request: Request, server: { requestIP(request: Request): { address: string } | null }): Response | Promise<Response>;
  }): { port: number; stop(closeActive?: boolean): Promise<void> | void };
}

export function serve(fetch: Fetch, host: string, port: number): Promise<HttpServer> {
  const runtime = globalThis as { Deno?: DenoServeApi; Bun?: BunServeApi };
  if (runtime.Bun) {
    const server = runtime.Bun.serve({
      hostname: host,
      port,
      fetch: (request, bun) => fetch(request, { address: bun.requestIP(request)?.address ?? "" }),
    });
    return Promise.resolve({ host, port: server.port, close: async () => void await server.stop(true) });
  }
  if (runtime.Deno) {
    const deno = runtime.Deno;
    return new Promise((resolve, reject) => {
      try {
        const server = deno.serve(
          { hostname: host, port, onListen: () => {} },
          (request, info) => fetch(request, { address: info.remoteAddr.hostname }),
        );
        resolve({ host, port: server.addr.port, close: () => server.shutdown() });
      } catch (error) {
        reject(error);
      }
    });
  }
  return Promise.reject(new Error("no HTTP server API on this runtime: mxscreen runs on Deno or Bun"));
}
