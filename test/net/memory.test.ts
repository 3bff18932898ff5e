import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "../harness.ts";
import { bigMemory } from "../../src/net/runtime/memory.ts";

const MIB = 1024 * 1024;

/** KiB of this process's anonymous memory on transparent huge pages. */
function anonHugeKib(): number {
  return Number(/^AnonHugePages:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/smaps_rollup", "utf8"))?.[1] ?? 0);
}

test("big memory: a table of 256 MiB is zeroed words, and it is on huge pages where the kernel gives them to memory that asks", async () => {
  const memory = await bigMemory();
  const before = anonHugeKib();
  const words = memory.allocate(256 * MIB);
  assert.equal(words.length, 64 * MIB);
  assert.ok(words.every((w) => w === 0));
  words.fill(0xffffffff);
  const thp = readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8");
  if (/\[(madvise|always)\]/.test(thp)) {
    const gained = anonHugeKib() - before;
    assert.ok(gained >= 128 * 1024, `${gained} KiB more on huge pages after writing 256 MiB (transparent_hugepage: ${thp.trim()})`);
  }
  assert.equal(words[words.length - 1], 0xffffffff);
});
