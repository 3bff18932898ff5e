import type { Kysely } from "kysely";
import type { Database } from "../store/types.ts";

/** A node whose heartbeat is older than this is taken for gone and not nudged. */
const PEER_FRESH_MS = 60_000;
/** A nudge is a hint: one that takes longer is not worth waiting for, the peer's poll comes anyway. */
const NUDGE_TIMEOUT_MS = 2_000;

/**
 * After a ban or allow change of this node reaches the database, each other node of the fleet
 * is told over its admin API (`POST /api/nudge`, with the fleet's admin token) to read the
 * database now instead of at its next poll. Best effort: the data still comes from the
 * database, so a nudge lost only leaves that node to its poll. At most one nudge per peer is
 * on its way; changes written meanwhile are covered by one more after it.
 */
export class Nudges {
  private peers: readonly string[] = [];
  /** Per peer on its way: whether another nudge is owed once it is answered. */
  private readonly inflight = new Map<string, boolean>();
  private readonly failing = new Set<string>();

  /** `self`: this node's name, not nudged; undefined (the CLI) nudges every node. */
  constructor(
    private readonly self: string | undefined,
    private readonly token: string | undefined,
    private readonly onError: (error: Error) => void,
  ) {}

  /** The other nodes' admin URLs, from their heartbeats in the nodes table. */
  readonly readPeers = async (db: Kysely<Database>): Promise<void> => {
    const rows = await db.selectFrom("nodes").select("admin_url").where("name", "<>", this.self ?? "")
      .where("admin_url", "is not", null).where("last_seen", ">", Date.now() - PEER_FRESH_MS).execute();
    this.peers = rows.map((row) => row.admin_url!);
  };

  get known(): number {
    return this.peers.length;
  }

  /** Resolves once every peer has answered or failed (the CLI waits for it before it exits). */
  send(): Promise<void> {
    return Promise.all(this.peers.map((peer) => this.nudge(peer))).then(() => {});
  }

  private nudge(peer: string): Promise<void> {
    if (this.inflight.has(peer)) {
      this.inflight.set(peer, true);
      return Promise.resolve();
    }
    this.inflight.set(peer, false);
    const headers: Record<string, string> = this.token === undefined ? {} : { authorization: `Bearer ${this.token}` };
    return fetch(`${peer.replace(/\/+$/, "")}/api/nudge`, { method: "POST", headers, signal: AbortSignal.timeout(NUDGE_TIMEOUT_MS) })
      .then(async (response) => {
        await response.body?.cancel();
        if (!response.ok) {
          throw new Error(
            `it answered ${response.status}${
              response.status === 401 || response.status === 403 ? " (give every node the same MXSCREEN_ADMIN_TOKEN)" : ""
            }`,
          );
        }
        if (this.failing.delete(peer)) this.onError(new Error(`nudging ${peer} works again`));
      })
      .catch((error) => {
        if (this.failing.has(peer)) return;
        this.failing.add(peer);
        this.onError(
          new Error(`cannot nudge the node at ${peer} after a ban (${(error as Error).message}); it still reads the ban at its next poll`),
        );
      })
      .finally(() => {
        const again = this.inflight.get(peer);
        this.inflight.delete(peer);
        if (again) void this.nudge(peer);
      });
  }
}
