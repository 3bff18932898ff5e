import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { byteByByte, CONFIG, play, whole } from "./transcript.ts";

const START = "HELO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n";
/** The `<CR>.<CR>` smuggling variants: to an MTA that ends lines at a bare CR, a second message follows. */
const SMUGGLING = [
  `${START}Subject: one\r\n\r\ntext\r.\r\nMAIL FROM:<smuggled@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: two\r\n.\r\nQUIT\r\n`,
  `${START}Subject: one\r\n\r\ntext\r\n.\rMAIL FROM:<smuggled@example.net>\r\n.\r\nQUIT\r\n`,
  `${START}Subject: one\r\n\r\ntext\r\r\n.\r\nQUIT\r\n`,
];

test("bare CR in message content, by default: the message is refused with 550 5.5.2 at the final dot, nothing passed on", () => {
  for (const input of SMUGGLING) {
    for (const split of [whole, byteByByte]) {
      const { replies, messages, outputs, session } = play(split(input));
      assert.equal(messages.length, 0, JSON.stringify(input));
      assert.match(
        replies,
        /354 [^\n]*\n550 5\.5\.2 Error: bare <CR> received in message content\r\n221 2\.0\.0 Bye\r\n$/,
        `${split.name}: ${JSON.stringify(input)}`,
      );
      assert.ok(outputs.some((o) => o.type === "message-abort"));
      assert.equal(session.facts.end, "quit");
    }
  }
});

test("bare CR in message content with MXSCREEN_BARE_CR=normalize: it becomes CRLF, in one message, and a dot after it stays content", () => {
  const config = { ...CONFIG, bareCr: "normalize" as const, maxMessageSize: 10_000 };
  for (const split of [whole, byteByByte]) {
    const { replies, messages } = play(split(SMUGGLING[0]), config);
    assert.deepEqual(messages, [
      "Subject: one\r\n\r\ntext\r\n.\r\nMAIL FROM:<smuggled@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: two\r\n",
    ], split.name);
    assert.match(replies, /250 2\.0\.0 Ok: queued as Q1\r\n221 2\.0\.0 Bye\r\n$/);
  }
  const { messages } = play(whole(SMUGGLING[2]), config);
  assert.deepEqual(messages, ["Subject: one\r\n\r\ntext\r\n\r\n"]);
  for (const message of play(whole(SMUGGLING[1]), config).messages) assert.doesNotMatch(message, /\r(?!\n)/);
});

test("bare CR in a command is a syntax error: 500 5.5.2, and the command is not acted on", () => {
  for (const split of [whole, byteByByte]) {
    const { replies, session } = play(split("NOOP\rQUIT\r\nHELO c.example\rMAIL FROM:<a@example.net>\r\nNOOP\r\n"));
    assert.equal(replies, "500 5.5.2 Error: bare <CR> in a command; lines end in <CR><LF>\r\n".repeat(2) + "250 2.0.0 Ok\r\n", split.name);
    assert.equal(session.closed, false);
    assert.equal(session.facts.errors, 2);
  }
});
