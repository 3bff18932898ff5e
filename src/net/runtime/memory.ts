import process from "node:process";

/** What the runtime offers a store holding millions of entries. */
export interface BigMemory {
  /**
   * `bytes` (a multiple of 4) of zeroed words, backed by huge pages where the kernel gives them:
   * from a huge page boundary on, when they are at least one huge page.
   */
  allocate(bytes: number): Uint32Array;
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

const plain: BufferAllocator = (bytes) => new Uint32Array(bytes / 4);

/**
 * A lookup in a table of hundreds of megabytes is one cache miss plus, with 4 KiB pages, a
 * TLB miss whose page walk costs as much again on a virtual machine (measured: a dependent read
 * at random in 512 MB, 320 ns, 240 ns with huge pages; a read of a 2 MB bitmap beside it, 69
 * ns of a lookup's time on ordinary pages, 47 on one huge page). Linux gives huge pages to memory
 * that asks for them (`transparent_hugepage` is `madvise` on most distributions), which neither
 * runtime does for an ArrayBuffer: this asks, through the runtime's FFI, before the memory is
 * first written, for a buffer one huge page larger than asked, and hands out its part from the
 * first huge page boundary on (the rest is never touched, so it costs address space, not memory).
 * Wherever that cannot be done (another OS, no libc, FFI not permitted) the words are plain
 * ones, which work the same, only slower.
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
    if (bytes < HUGE_PAGE) return plain(bytes);
    const buffer = new ArrayBuffer(bytes + HUGE_PAGE);
    const start = address(buffer);
    const from = (start + page - 1n) / page * page;
    // The whole huge pages inside the buffer: advice past its end would reach memory it does not own.
    const to = (start + BigInt(buffer.byteLength)) / page * page;
    // A refusal (EINVAL on a kernel without THP) leaves ordinary pages: nothing to undo.
    madvise(from, to - from);
    return new Uint32Array(buffer, Number(from - start), bytes / 4);
  };
}
