import { mkdir, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { concatBytes } from "../smtp/bytes.ts";
import type { DeliveryResult } from "../smtp/types.ts";
import { fcrdnsHeader, receivedHeader } from "./received.ts";
import type { Deliverer, MessageContext, OutgoingMessage } from "./types.ts";

const encoder = new TextEncoder();
const BATCH_BYTES = 64 * 1024;

/**
 * A Maildir-style spool: each message is written to tmp/, fsynced, renamed into new/, and
 * new/ is fsynced, so a crash leaves either the whole message in new/ or nothing there.
 * Files use LF line ends, as Maildir readers expect; the envelope is kept in `Return-Path:`
 * and one `Delivered-To:` per recipient.
 */
export class Spool implements Deliverer {
  private sequence = 0;
  private ready: Promise<void> | undefined;

  constructor(private readonly dir: string, private readonly pid: number) {}

  /** Creates tmp/, new/ and cur/ if missing. */
  prepare(): Promise<void> {
    this.ready ??= Promise.all(["tmp", "new", "cur"].map((d) => mkdir(join(this.dir, d), { recursive: true }))).then(() => {});
    return this.ready;
  }

  begin(context: MessageContext): OutgoingMessage {
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
    const file = this.prepare().then(() => open(tmpPath, "wx", 0o640));
    let chain: Promise<unknown> = file;
    let batch: Uint8Array[] = [toLf(encoder.encode(head))];
    let batched = batch[0].length;
    let failure: Error | undefined;
    const writeBatch = () => {
      const data = concatBytes(batch);
      batch = [];
      batched = 0;
      chain = chain.then(async () => {
        await (await file).write(data);
      }).catch((error) => failure ??= error);
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
        try {
          if (failure) throw failure;
          const handle = await file;
          await handle.sync();
          await handle.close();
          await rename(tmpPath, newPath);
          await syncDir(join(this.dir, "new"));
          return { ok: true, id };
        } catch (error) {
          await file.then((h) => h.close()).catch(() => {});
          await unlink(tmpPath).catch(() => {});
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

async function syncDir(path: string): Promise<void> {
  const dir = await open(path, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
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
