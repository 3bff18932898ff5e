import { bunListen } from "./bun-listener.ts";
import { nodeListen } from "./node-listener.ts";
import type { Listener, ListenOptions } from "../types.ts";

/** The listener that holds the most connections per MiB on the runtime we are on (bench/README.md). */
export function listen(options: ListenOptions): Promise<Listener> {
  const bun = (globalThis as { Bun?: Parameters<typeof bunListen>[0] }).Bun;
  return bun ? bunListen(bun, options) : nodeListen(options);
}
