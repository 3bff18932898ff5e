import assert from "node:assert/strict";
import { authorize, isLoopback } from "../../src/admin/auth.ts";
import { test } from "../harness.ts";

const TOKEN = "s3cret-token-0123456789";

test("without a token only loopback clients are served", () => {
  assert.equal(authorize(undefined, null, "127.0.0.1"), "ok");
  assert.equal(authorize(undefined, null, "127.9.8.7"), "ok");
  assert.equal(authorize(undefined, null, "::1"), "ok");
  assert.equal(authorize(undefined, null, "::ffff:127.0.0.1"), "ok");
  assert.equal(authorize(undefined, null, "192.0.2.1"), "not-loopback");
  assert.equal(authorize(undefined, null, "2001:db8::1"), "not-loopback");
  assert.equal(authorize(undefined, `Bearer ${TOKEN}`, "192.0.2.1"), "not-loopback");
  assert.equal(isLoopback("::2"), false);
  assert.equal(isLoopback("garbage"), false);
});

test("with a token: missing, wrong, wrong length and right, as Bearer or Basic password", () => {
  assert.equal(authorize(TOKEN, null, "127.0.0.1"), "missing", "a loopback client needs the token too");
  assert.equal(authorize(TOKEN, "Bearer nope-nope-nope-nope-1234", "192.0.2.1"), "wrong");
  assert.equal(authorize(TOKEN, "Bearer x", "192.0.2.1"), "wrong");
  assert.equal(authorize(TOKEN, `Bearer ${TOKEN}x`, "192.0.2.1"), "wrong");
  assert.equal(authorize(TOKEN, `Bearer ${TOKEN}`, "192.0.2.1"), "ok");
  assert.equal(authorize(TOKEN, `Basic ${btoa(`admin:${TOKEN}`)}`, "192.0.2.1"), "ok");
  assert.equal(authorize(TOKEN, `Basic ${btoa("admin:wrong")}`, "192.0.2.1"), "wrong");
  assert.equal(authorize(TOKEN, "Digest abc", "192.0.2.1"), "missing");
});

test("a malformed Authorization header is refused as malformed, never an error", () => {
  for (
    const header of [
      "Basic a",
      "Basic ====",
      "Basic YWRtaW4", // base64 of "admin": no colon, so no password
      `Basic ${btoa(`admin:${TOKEN}`)} extra`,
      "Basic",
      "Basic ",
      "Basic *%$",
      "Bearer",
      "Bearer ",
      `Bearer ${TOKEN} ${TOKEN}`,
    ]
  ) {
    assert.equal(authorize(TOKEN, header, "192.0.2.1"), "malformed", JSON.stringify(header));
  }
});
