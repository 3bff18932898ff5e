import assert from "node:assert/strict";
import { Session } from "../../src/smtp/session.ts";
import { boundedReply, MAX_REPLY_LINE, reply } from "../../src/checks/reply.ts";
import type { Output } from "../../src/smtp/types.ts";
import { test } from "../harness.ts";
import { CLIENT, CONFIG, play, whole } from "../smtp/transcript.ts";

/** RFC 5321 4.2 and 4.5.3.1.5: CRLF-terminated lines of printable ASCII, each at most 512 octets, `NNN-` then `NNN `. */
function assertWellFormed(text: string): void {
  const lines = text.split(/(?<=\r\n)/);
  assert.ok(text.endsWith("\r\n"), `ends in CRLF: ${JSON.stringify(text.slice(-20))}`);
  for (const [i, line] of lines.entries()) {
    assert.ok(new TextEncoder().encode(line).length <= MAX_REPLY_LINE, `line ${i} is ${line.length} octets`);
    assert.match(line, i === lines.length - 1 ? /^\d{3} [\x20-\x7e]*\r\n$/ : /^\d{3}[ -][\x20-\x7e]*\r\n$/);
  }
}

test("reply() clips each line to 512 octets with its CRLF and turns client bytes outside printable ASCII into ?", () => {
  const text = reply(250, null, "first", `Hello ${"h".repeat(600)}`, "caf\u00e9 \r\n\x00");
  assertWellFormed(text);
  const lines = text.split("\r\n");
  assert.equal(lines[1].length, MAX_REPLY_LINE - 2);
  assert.equal(lines[2], "250 caf? ???");
});

test("boundedReply() holds an upstream's multi-line reply to the same rules, line by line", () => {
  const upstream = `250-mta.example says ${"x".repeat(700)}\r\n250-b\u00e4d\rinjected\r\n250 ok\n`;
  const text = boundedReply(upstream);
  assertWellFormed(text);
  assert.deepEqual(text.split("\r\n").slice(1), ["250-b?d?injected", "250 ok", ""]);
  assert.equal(boundedReply("221 2.0.0 Bye\r\n"), "221 2.0.0 Bye\r\n");
});

test("replies built from client text stay well formed: HELO greeting, option names, relay refusal, delayed rejection", () => {
  const long = "a".repeat(900);
  const inputs = [
    `EHLO caf\u00e9.${long}.example\r\n`,
    `HELO ${long}\u00e9\r\n`,
    `EHLO c.example\r\nMAIL FROM:<a@example.net> X${long}=1\r\n`,
    `HELO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@${"d".repeat(60)}.${"e".repeat(60)}.${"f".repeat(60)}.${
      "g".repeat(60)
    }.example> Z${long}\r\n`,
    `HELO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<${"l".repeat(64)}@${"d".repeat(60)}.${"e".repeat(60)}.${"f".repeat(60)}.${
      "g".repeat(60)
    }.example>\r\n`,
    `HELO 192.0.2.1\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<${"l".repeat(64)}@example.org>\r\n`,
  ];
  for (const input of inputs) {
    const { outputs } = play(whole(input), { ...CONFIG, actions: { pipelining: "ignore" } });
    const replies = outputs.flatMap((o) => (o.type === "reply" ? [o.text] : []));
    assert.ok(replies.length > 0);
    for (const text of replies) assertWellFormed(text);
  }
  const { replies } = play(whole(`EHLO caf\u00e9.example\r\n`));
  assert.match(replies, /^250-mx\.test\.example Hello caf\?\.example \[192\.0\.2\.1\]\r\n/);
});

test("an upstream's over-long, non-ASCII reply is passed back clipped per line", () => {
  const session = new Session({ ...CONFIG, relay: true }, CLIENT, 0);
  const enc = (s: string) => new TextEncoder().encode(s);
  const texts = (out: Output[]) => out.flatMap((o) => (o.type === "reply" ? [o.text] : []));
  session.receive(enc("EHLO c.example\r\n"), 0);
  const asked = session.receive(enc("MAIL FROM:<>\r\n"), 1);
  assert.deepEqual(asked.filter((o) => o.type === "upstream"), [{ type: "upstream", command: "MAIL FROM:<>" }]);
  const answered = texts(session.upstreamReplied({ code: 250, text: `250-${"y".repeat(800)}\r\n250 2.1.0 \u00fcber Ok\r\n` }, 2));
  assert.equal(answered.length, 1);
  assertWellFormed(answered[0]);
  assert.match(answered[0], /\r\n250 2\.1\.0 \?ber Ok\r\n$/);
});
