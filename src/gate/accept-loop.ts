import { formatIP, type Prefix, parseIP } from "../ip/address.ts";
import type { Metrics } from "../admin/metrics.ts";
import type { Logger } from "../log/logger.ts";
import { listen } from "../net/listen.ts";
import type { ClientSocket, ConnectionHandlers, Listener } from "../net/types.ts";
import type { Store } from "../store/store.ts";
import type { SessionHandle, SessionPool } from "../../workers/types.ts";
import { clientLabel, type Concluder, type ConnectionRecord, sessionFinding } from "./conclude.ts";
import { Greeter } from "./greeter.ts";
import { standing as standingOf } from "./standing.ts";
import type { GateAction, GateConfig } from "./types.ts";

export interface AcceptLoopOptions {
  readonly gate: GateConfig;
  readonly listen: readonly { host: string; port: number }[];
  readonly allow: readonly Prefix[];
  readonly maxConnections: number;
}

/**
 * The main thread's part of every connection: look the client up, greet it (or refuse it),
 * run the greet wait, and hand clean clients to the session pool. It owns every socket.
 */
export class AcceptLoop {
  private readonly listeners: Listener[] = [];
  private readonly open = new Set<{ shutdown(): void }>();
  private stopping = false;

  constructor(
    private readonly options: AcceptLoopOptions,
    private readonly store: Store,
    private readonly pool: SessionPool,
    private readonly concluder: Concluder,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  async start(): Promise<Listener[]> {
    for (const address of this.options.listen) {
      const listener = await listen({
        host: address.host,
        port: address.port,
        maxConnections: this.options.maxConnections,
        onConnection: (socket) => this.accept(socket),
      }).catch((error) => {
        throw new Error(`cannot listen on ${address.host}:${address.port}: ${(error as Error).message}`, { cause: error });
      });
      this.listeners.push(listener);
    }
    return this.listeners;
  }

  get connections(): number {
    return this.open.size;
  }

  get listening(): boolean {
    return this.listeners.length === this.options.listen.length && !this.stopping;
  }

  /** Stops accepting and says goodbye to clients still in the greet wait; sessions are the pool's to finish. */
  stop(): void {
    this.stopping = true;
    for (const listener of this.listeners) listener.close();
    for (const connection of [...this.open]) connection.shutdown();
  }

  private accept(socket: ClientSocket): ConnectionHandlers {
    const now = Date.now();
    const ip = parseIP(socket.remoteAddress);
    if (ip === null || this.stopping) {
      socket.destroy();
      return { data: () => {}, close: () => {} };
    }
    const record: ConnectionRecord = { ip, address: formatIP(ip), port: socket.remotePort, openedAt: now };
    const standing = standingOf(this.options.allow, this.store, ip, now);
    const greeter = new Greeter(this.options.gate);
    let session: SessionHandle | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let concluded = false;

    const tracked = {
      shutdown: () => {
        if (session || concluded) return;
        concluded = true;
        socket.write(`421 4.3.2 ${this.options.gate.hostname} Service shutting down, try again later\r\n`);
        socket.end();
        this.concluder.conclude(record, { event: "SHUTDOWN", check: "greet-wait", action: "close", evidence: {} }, Date.now());
      },
    };
    this.open.add(tracked);

    const run = (actions: GateAction[]) => {
      for (const action of actions) {
        switch (action.type) {
          case "write":
            socket.write(action.text);
            break;
          case "close":
            socket.end();
            break;
          case "drop":
            socket.destroy();
            break;
          case "conclude":
            concluded = true;
            this.concluder.conclude(record, action.finding, Date.now());
            break;
          case "handoff":
            session = this.pool.open({ address: record.address, port: record.port }, action.early, {
              write: (text) => socket.write(text),
              close: () => socket.end(),
              log: ({ event, ...rest }) => {
                if (event === "DELIVERED" || event === "DELIVERY-FAILED") {
                  this.metrics.inc("mxscreen_messages_total", { result: event === "DELIVERED" ? "delivered" : "failed" });
                }
                this.logger.log({ event, client: clientLabel(record), ...rest });
              },
              end: (facts) => {
                concluded = true;
                this.concluder.conclude(record, sessionFinding(standing, greeter.noted, facts), Date.now());
                socket.end();
              },
            });
            break;
        }
      }
      if (timer === undefined && greeter.deadline !== Infinity) {
        timer = setTimeout(() => run(greeter.tick(Date.now())), Math.max(0, greeter.deadline - Date.now()));
      }
    };

    run(greeter.open(standing, now));
    return {
      data: (bytes) => {
        if (session) session.data(bytes);
        else run(greeter.receive(bytes, Date.now()));
      },
      close: () => {
        this.open.delete(tracked);
        if (timer !== undefined) clearTimeout(timer);
        if (session) return session.gone();
        const finding = greeter.hangup(Date.now());
        if (finding && !concluded) {
          concluded = true;
          this.concluder.conclude(record, finding, Date.now());
        }
      },
    };
  }
}
