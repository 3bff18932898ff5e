import { type FileHandle, mkdir, open, readdir, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { concatBytes } from "../smtp/bytes.ts";
import { DirSync } from "./dir-sync.ts";
import type { DeliveryResult } from "../smtp/types.ts";
import { fcrdnsHeader, receivedHeader } from "./received.ts";
import type { Deliverer, MessageContext, OutgoingMessage } from "./types.ts";

const encoder = new TextEncoder();
const BATCH_BYTES = 64 * 1024;
/** Bytes of one message waiting for the disk past which the client is asked to wait (TCP backpressure). */
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;
/** Maildir's rule: a file in tmp/ untouched this long is left over from a crash. */
const STALE_TMP_MS = 36 * 3_600_000;
/** Messages are for the MTA or reader that runs as this user, nobody else. */
const FILE_MODE = 0o600;

/**
 * A Maildir-style spool: each message is written to tmp/, fsynced, renamed into new/, and
 * new/ is fsynced, so a crash leaves either the whole message in new/ or nothing there.
 * Files use LF line ends, as Maildir readers expect; the envelope is kept in `Return-Path:`
 * and one `Delivered-To:` per recipient.
 */
export class Spool implements Deliverer {
  private sequence = 0;
  private ready: Promise<void> | undefined;
  private readonly newDir: DirSync;

  constructor(private readonly dir: string, private readonly pid: number) {
    this.newDir = new DirSync(join(dir, "new"));
  }

  /**
   * Creates tmp/, new/ and cur/ if missing and removes what a crash left in tmp/ more than 36
   * hours ago. Younger files stay: workers and the processes of MXSCREEN_PROCESSES share tmp/
   * and start at different times, and a slow client's file can sit untouched for a long
   * while between batches, so age is the only safe sign of a dead writer.
   */
  prepare(): Promise<void> {
    this.ready ??= Promise.all(["tmp", "new", "cur"].map((d) => mkdir(join(this.dir, d), { recursive: true })))
      .then(() => removeStale(join(this.dir, "tmp"), Date.now()))
      .catch((error) => {
        // Not cached: a spool directory that comes back (a remount) is used again.
        this.ready = undefined;
        throw error;
      });
    return this.ready;
  }

  begin(context: MessageContext, congested: (yes: boolean) => void = () => {}): OutgoingMessage {
    const now = context.receivedAt;
    // Workers of one process share its pid: the random part keeps their names apart.
    const unique = `${(this.sequence++).toString(36)}${randomHex(4)}`.toUpperCase();
    const id = `${now.getTime().toString(36).toUpperCase()}${unique}`;
    const name = `${Math.floor(now.getTime() / 1000)}.M${(now.getTime() % 1000) * 1000}P${this.pid}Q${unique}.${context.hostname}`;
    const tmpPath = join(this.dir, "tmp", name);
    const newPath = join(this.dir, "new", name);
    const head = [
      `Return-Path: <${context.envelope.from}>\r\n`,
      ...context.envelope.recipients.map((r) => `Delivered-To: ${r}\r\n`),
      receivedHeader(context, id),
      fcrdnsHeader(context),
    ].join("");
    const file = this.prepare().then(() => open(tmpPath, "wx", FILE_MODE));
    let failure: Error | undefined;
    // Listened to at once: a file that cannot be opened (read-only or full disk) fails before
    // finish() or abort() come, and an unheard rejection would end the process.
    let chain: Promise<unknown> = file.catch((error) => failure ??= error);
    let batch: Uint8Array[] = [toLf(encoder.encode(head))];
    let batched = batch[0].length;
    // A client faster than the disk must not pile its message up in memory.
    let waiting = 0;
    let paused = false;
    const writeBatch = () => {
      const data = concatBytes(batch);
      batch = [];
      batched = 0;
      waiting += data.length;
      if (waiting > HIGH_WATER && !paused) congested(paused = true);
      chain = chain.then(async () => {
        await writeAll(await file, data);
      }).catch((error) => failure ??= error).finally(() => {
        waiting -= data.length;
        if (paused && waiting < LOW_WATER) congested(paused = false);
      });
    };
    return {
      id,
      write: (bytes) => {
        batch.push(toLf(bytes));
        batched += bytes.length;
        if (batched >= BATCH_BYTES) writeBatch();
      },
      finish: async (): Promise<DeliveryResult> => {
        writeBatch();
        await chain;
        let renamed = false;
        try {
          if (failure) throw failure;
          const handle = await file;
          await handle.sync();
          await handle.close();
          await rename(tmpPath, newPath);
          renamed = true;
          await this.newDir.sync();
          return { ok: true, id };
        } catch (error) {
          await file.then((h) => h.close()).catch(() => {});
          // The client is told to send it again: a copy left in new/ would be delivered twice.
          await unlink(renamed ? newPath : tmpPath).catch(() => {});
          return { ok: false, temporary: true, reason: `spool write failed (${(error as Error).message})` };
        }
      },
      abort: async () => {
        await chain;
        await file.then((h) => h.close()).catch(() => {});
        await unlink(tmpPath).catch(() => {});
      },
    };
  }
}

/** A short write is how a nearly full disk answers first; the rest then fails with ENOSPC. */
async function writeAll(handle: FileHandle, data: Uint8Array): Promise<void> {
  for (let written = 0; written < data.length;) {
    const { bytesWritten } = await handle.write(data, written, data.length - written);
    if (bytesWritten === 0) throw new Error(`wrote nothing of the last ${data.length - written} bytes (disk full?)`);
    written += bytesWritten;
  }
}

async function removeStale(tmp: string, now: number): Promise<void> {
  for (const name of await readdir(tmp)) {
    const path = join(tmp, name);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() && now - info.mtimeMs > STALE_TMP_MS) await unlink(path).catch(() => {});
  }
}

/** CRLF → LF for a chunk of whole lines. */
function toLf(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0d && bytes[i + 1] === 0x0a) continue;
    out[n++] = bytes[i];
  }
  return out.subarray(0, n);
}

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}
