import { connect, type Socket } from "node:net";
import { onCleanup } from "../harness.ts";

/** A raw client for scripted conversations: every received byte is kept with the time it arrived. */
export class RawClient {
  readonly received: { at: number; text: string }[] = [];
  readonly opened = Date.now();
  readonly closed: Promise<void>;
  /** The raw socket, for tests that take the connection over (STARTTLS). */
  readonly socket: Socket;
  private waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (text: string) => {
      this.received.push({ at: Date.now(), text });
      for (const wake of this.waiters.splice(0)) wake();
    });
    socket.on("error", () => {});
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        for (const wake of this.waiters.splice(0)) wake();
        resolve();
      })
    );
    onCleanup(() => socket.destroy());
  }

  static open(port: number, localAddress = "127.0.0.1", host = localAddress.includes(":") ? "::1" : "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, localAddress });
      socket.once("connect", () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  /** Opens a connection and waits out the greeting, up to the final `220 `. */
  static async greeted(port: number, localAddress: string): Promise<RawClient> {
    const client = await RawClient.open(port, localAddress);
    await client.until(/^220 /m);
    return client;
  }

  get text(): string {
    return this.received.map((r) => r.text).join("");
  }

  get isClosed(): boolean {
    return this.socket.destroyed || this.socket.readableEnded;
  }

  write(text: string | Uint8Array): void {
    this.socket.write(text);
  }

  /** Waits until everything received from offset `from` on matches `pattern`; fails with the transcript otherwise. */
  async until(pattern: RegExp, timeoutMs = 5_000, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.text.slice(from))) {
      if (this.socket.destroyed || this.socket.readableEnded) throw new Error(`closed before ${pattern}; got ${JSON.stringify(this.text)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${pattern} within ${timeoutMs} ms; got ${JSON.stringify(this.text)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
    return this.text;
  }

  /** Sends one command line and waits for the reply to match `reply`, as a client that keeps in step does. */
  async command(line: string, reply: RegExp, timeoutMs = 5_000): Promise<string> {
    const from = this.text.length;
    this.write(`${line}\r\n`);
    return (await this.until(reply, timeoutMs, from)).slice(from);
  }

  /** When the first byte matching `pattern` arrived, in ms after connecting. */
  arrival(pattern: RegExp): number | undefined {
    let sofar = "";
    for (const r of this.received) {
      sofar += r.text;
      if (pattern.test(sofar)) return r.at - this.opened;
    }
    return undefined;
  }

  async waitClosed(timeoutMs = 5_000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.closed,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms; got ${JSON.stringify(this.text)}`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  close(): void {
    this.socket.end();
  }
}
