import assert from "node:assert/strict";
import { sessionFindings } from "../../src/gate/conclude.ts";
import { Session } from "../../src/smtp/session.ts";
import { test } from "../harness.ts";
import { CLIENT, CONFIG } from "../smtp/transcript.ts";

test("a session whose TLS handshake failed ends as TLS-FAILED with action close, never as PASS NEW", () => {
  const session = new Session({ ...CONFIG, tls: true }, CLIENT, 0);
  session.receive(new TextEncoder().encode("EHLO c.example\r\n"), 0);
  session.receive(new TextEncoder().encode("STARTTLS\r\n"), 0);
  session.tlsStarted(false, 1);
  const [verdict] = sessionFindings({ kind: "new" }, [], session.facts);
  assert.equal(verdict.event, "TLS-FAILED");
  assert.equal(verdict.check, "tls-failed");
  assert.equal(verdict.action, "close");
  assert.equal(verdict.evidence.end, "tls-failed");
});
