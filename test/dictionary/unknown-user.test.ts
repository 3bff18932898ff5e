import assert from "node:assert/strict";
import { saysUnknownRecipient } from "../../src/dictionary/unknown-user.ts";
import { test } from "../harness.ts";

test("what real MTAs answer for a recipient that does not exist counts as unknown; refusals for other reasons do not", () => {
  const unknown = [
    "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local recipient table", // Postfix
    "450 4.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table", // Postfix, soft_bounce
    "550 Unrouteable address", // Exim
    "550 Invalid recipient: <nobody@example.org>", // OpenSMTPD
    "524 5.2.4 Mailing list expansion problem: <nobody@example.org>", // OpenSMTPD
    "511 sorry, no mailbox here by that name (#5.1.1 - chkuser)", // qmail chkuser
    "451 No such user ''", // seed 003
    "554 5.7.1 <x@elsewhere.example>: Relay access denied", // Postfix, a domain not its own
  ];
  for (const text of unknown) assert.ok(saysUnknownRecipient(Number(text.slice(0, 3)), text), text);
  const other = [
    "550 5.7.1 <nobody@example.org>: Helo command rejected: need fully-qualified hostname",
    "552 5.2.2 <someone@example.org>: Mailbox full",
    "450 4.2.0 <someone@example.org>: Recipient address rejected: Greylisted",
    "421 4.4.2 upstream.example Error: timeout exceeded",
    "451 4.4.1 mx.test.example Error: the mail server behind us is not available, try again later",
    "250 2.1.5 Ok",
  ];
  for (const text of other) assert.ok(!saysUnknownRecipient(Number(text.slice(0, 3)), text), text);
});
