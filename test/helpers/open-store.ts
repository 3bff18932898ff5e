/**
 * A node's start against the database, alone in its process: opens the store at argv[2] as node
 * argv[3] (migrations included) and closes it; exits 1 with the error on stderr. Two of them
 * started at once are two nodes starting at the same moment, each blocking only itself while it
 * waits for the other's write lock, as in production.
 */
import process from "node:process";
import { Store } from "../../src/store/store.ts";

try {
  const store = await Store.open({ url: process.argv[2], node: process.argv[3], index: false }, (error) => console.error(error.message));
  await store.close();
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
