import { contains, formatIP, type IP, mask, type Prefix } from "../ip/address.ts";

/** IPv6 clients are filed under their /64: a ban of a /64 or narrower finds them without a scan. */
const V6_FILE_LENGTH = 64;

/** Past this many wide bans in one turn, a scan leaves each connection to `covered`'s own look-up rather than test every ban against it. */
const SCAN_BATCH = 64;

function fileKey(ip: IP): string {
  return ip.family === 4 ? formatIP(ip) : formatIP(mask(ip, V6_FILE_LENGTH));
}

/**
 * The open connections by client, so that a ban can end those it covers (issue 16: a ban made
 * anywhere in the fleet ends the banned client's other sessions). A ban of one IPv4 address or
 * of an IPv6 /64 or narrower (every automatic ban) finds its connections by one lookup, so a
 * flood of pregreet bans costs nothing per open connection; the wider ones (an operator's /24,
 * a feed's ranges) of one turn of the event loop are answered by one scan on the next, however
 * many there were (an import of a million ranges). `covered` looks the client up again: it may
 * be handed a connection a wider ban does not cover, and must decide by the lists in force.
 */
export class LiveSessions<T extends { readonly record: { readonly ip: IP } }> {
  private readonly byClient = new Map<string, Set<T>>();
  private wide: Prefix[] = [];
  private scanScheduled = false;

  constructor(private readonly covered: (connection: T) => void) {}

  add(connection: T): void {
    const key = fileKey(connection.record.ip);
    const set = this.byClient.get(key) ?? new Set();
    set.add(connection);
    this.byClient.set(key, set);
  }

  delete(connection: T): void {
    const key = fileKey(connection.record.ip);
    const set = this.byClient.get(key);
    if (set?.delete(connection) && set.size === 0) this.byClient.delete(key);
  }

  /** A ban of `prefix` is in force: every open connection it covers is handed to `covered`. */
  banned(prefix: Prefix): void {
    const narrow = prefix.ip.family === 4 ? prefix.length === 32 : prefix.length >= V6_FILE_LENGTH;
    if (narrow) {
      const set = this.byClient.get(fileKey(prefix.ip));
      if (set === undefined) return;
      for (const connection of [...set]) if (contains(prefix, connection.record.ip)) this.covered(connection);
      return;
    }
    if (this.byClient.size === 0) return;
    if (this.wide.length <= SCAN_BATCH) this.wide.push(prefix);
    if (this.scanScheduled) return;
    this.scanScheduled = true;
    setTimeout(() => this.scan(), 0);
  }

  private scan(): void {
    this.scanScheduled = false;
    const wide = this.wide;
    this.wide = [];
    const many = wide.length > SCAN_BATCH;
    for (const set of [...this.byClient.values()]) {
      for (const connection of [...set]) {
        if (many || wide.some((prefix) => contains(prefix, connection.record.ip))) this.covered(connection);
      }
    }
  }
}
