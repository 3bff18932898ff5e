import { freePort } from "./server.ts";

/**
 * Starts something on a port found free, and again on another one when the port was taken
 * between the look and the bind (other tests and processes run on this machine too).
 */
export async function onFreePort<T>(launch: (port: number) => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await launch(await freePort());
    } catch (error) {
      if (attempt >= attempts || !/Address already in use/.test((error as Error).message)) throw error;
    }
  }
}
