import assert from "node:assert/strict";
import { dotStuff } from "../../src/delivery/dot-stuff.ts";
import { test } from "../harness.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

test("every line that begins with a dot gets another, wherever it stands in the chunk", () => {
  assert.equal(dec(dotStuff(enc(".first\r\nmiddle\r\n.\r\n..two\r\nend.\r\n"))), "..first\r\nmiddle\r\n..\r\n...two\r\nend.\r\n");
  const plain = enc("no dots\r\nat line starts.\r\n");
  assert.equal(dotStuff(plain), plain, "untouched, not copied, when nothing needs it");
  assert.equal(dec(dotStuff(enc("a\r\n.\r\n"))), "a\r\n..\r\n", "a lone dot inside a message cannot end it upstream");
});
