import process from "node:process";

/** What the runtime offers a store holding millions of entries. */
export interface BigMemory {
  /** An ArrayBuffer of `bytes` (zeroed), backed by huge pages where the kernel gives them. */
  allocate(bytes: number): ArrayBuffer;
  /**
   * A full garbage collection now, where the runtime allows it. Bun's collector lets the garbage
   * of a long load (pages of rows parsed and dropped) pile up in proportion to the heap, which a
   * table of hundreds of megabytes makes large: 2 GB of RSS for 0.5 GB of table at ten million
   * entries (measured), unless it is collected as the load goes.
   */
  collect(): void;
}

type BufferAllocator = BigMemory["allocate"];

const HUGE_PAGE = 2 * 1024 * 1024;
/** Linux's MADV_HUGEPAGE. */
const MADV_HUGEPAGE = 14;
/** Below this a table fits the TLB's reach of ordinary pages anyway. */
const WORTH_IT = 4 * HUGE_PAGE;

interface DenoFfi {
  dlopen(
    path: string,
    symbols: Record<string, { parameters: string[]; result: string }>,
  ): { symbols: { madvise(at: unknown, length: bigint, advice: number): number } };
  UnsafePointer: { of(buffer: ArrayBuffer): unknown; value(pointer: unknown): number | bigint; create(address: bigint): unknown };
}

interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: { madvise(at: number, length: number, advice: number): number } };
  ptr(view: Uint8Array): number;
}

/**
 * A lookup in a table of hundreds of megabytes is one cache miss plus, with 4 KiB pages, a
 * TLB miss whose page walk costs as much again on a virtual machine (measured: a dependent read
 * at random in 512 MB, 320 ns, 240 ns with huge pages). Linux gives huge pages to memory that asks
 * for them (`transparent_hugepage` is `madvise` on most distributions), which neither runtime
 * does for an ArrayBuffer: this asks, through the runtime's FFI, for the aligned part of each
 * large buffer before it is first written. Wherever that cannot be done (another OS, no libc,
 * FFI not permitted) buffers are plain ones, which work the same, only slower.
 */
export async function bigMemory(): Promise<BigMemory> {
  return { allocate: await hugePageAllocator(), collect: collector() };
}

function collector(): () => void {
  const bun = (globalThis as unknown as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun) return () => bun.gc(true);
  // Deno exposes its collector only when started with --v8-flags=--expose-gc (the benches).
  const gc = (globalThis as { gc?: () => void }).gc;
  return gc ?? (() => {});
}

async function hugePageAllocator(): Promise<BufferAllocator> {
  const plain: BufferAllocator = (bytes) => new ArrayBuffer(bytes);
  if (process.platform !== "linux") return plain;
  try {
    const deno = (globalThis as unknown as { Deno?: DenoFfi }).Deno;
    if (deno) {
      const { madvise } = deno.dlopen("libc.so.6", { madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" } }).symbols;
      return advised(
        (buffer) => BigInt(deno.UnsafePointer.value(deno.UnsafePointer.of(buffer))),
        (at, length) => madvise(deno.UnsafePointer.create(at), length, MADV_HUGEPAGE),
      );
    }
    if ((process.versions as Record<string, string | undefined>).bun) {
      const specifier = "bun:ffi";
      const bun = await import(specifier) as BunFfi;
      const { madvise } = bun.dlopen("libc.so.6", { madvise: { args: ["ptr", "u64", "i32"], returns: "i32" } }).symbols;
      return advised(
        (buffer) => BigInt(bun.ptr(new Uint8Array(buffer))),
        (at, length) => madvise(Number(at), Number(length), MADV_HUGEPAGE),
      );
    }
  } catch {
    // No libc to open or FFI not permitted: plain buffers.
  }
  return plain;
}

function advised(address: (buffer: ArrayBuffer) => bigint, madvise: (at: bigint, length: bigint) => number): BufferAllocator {
  const page = BigInt(HUGE_PAGE);
  return (bytes) => {
    const buffer = new ArrayBuffer(bytes);
    if (bytes < WORTH_IT) return buffer;
    const start = address(buffer);
    const from = (start + page - 1n) / page * page;
    const to = (start + BigInt(bytes)) / page * page;
    // A refusal (EINVAL on a kernel without THP) leaves ordinary pages: nothing to undo.
    if (to > from) madvise(from, to - from);
    return buffer;
  };
}
