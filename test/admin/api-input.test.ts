import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { startServer } from "../helpers/server.ts";

const TOKEN = "test-admin-token-0123456789abcdef";

async function call(base: string, path: string, authorization: string, body?: unknown) {
  const headers: Record<string, string> = { authorization };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(base + path, {
    method: body === undefined ? "GET" : "POST",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

test(
  "the admin API: a malformed Authorization header is 401, an absurd TTL and an unconfirmed /0 are 400 with how to fix them, explain keeps working",
  async () => {
    const server = await startServer({ MXSCREEN_ADMIN_TOKEN: TOKEN }, { admin: true });
    const bearer = `Bearer ${TOKEN}`;
    for (const header of ["Basic a", "Basic ====", "Bearer", `Basic ${btoa(TOKEN)}`]) {
      const answer = await call(server.admin, "/api/stats", header);
      assert.equal(answer.status, 401, `${header}: ${JSON.stringify(answer.json)}`);
      assert.match(answer.json.error, /^unauthorized: the Authorization header is malformed: send Bearer <MXSCREEN_ADMIN_TOKEN>/);
    }
    assert.equal((await call(server.admin, "/api/stats", `Basic ${btoa(`admin:${TOKEN}`)}`)).status, 200);

    const huge = await call(server.admin, "/api/bans", bearer, { address: "192.0.2.7", ttl: "100000000d" });
    assert.equal(huge.status, 400);
    assert.equal(huge.json.error, 'ttl: "100000000d" is longer than 36500d (100 years), the longest allowed; use never for no end');
    const longest = await call(server.admin, "/api/bans", bearer, { address: "192.0.2.7", ttl: "36500d" });
    assert.equal(longest.status, 201, JSON.stringify(longest.json));
    const explained = await call(server.admin, "/api/explain/192.0.2.7", bearer);
    assert.equal(explained.status, 200, JSON.stringify(explained.json));
    assert.match(explained.json.standing, /^banned as 192\.0\.2\.7\/32 until 21\d\d-/);

    for (const address of ["0.0.0.0/0", "10.0.0.0/7", "::/0", "2001::/15"]) {
      for (const kind of ["bans", "allow"]) {
        const unconfirmed = await call(server.admin, `/api/${kind}`, bearer, { address });
        assert.equal(unconfirmed.status, 400, `${kind} ${address}`);
        assert.match(
          unconfirmed.json.error,
          /^address: \S+ is wider than a \/(8|16) and covers a large part of the Internet; if you mean it, confirm with "force": true in the body$/,
        );
      }
    }
    assert.equal((await call(server.admin, "/api/bans", bearer, { address: "10.0.0.0/8" })).status, 201, "a /8 needs no confirmation");
    assert.equal((await call(server.admin, "/api/bans", bearer, { address: "2001:db8::/16" })).status, 201, "nor an IPv6 /16");
    const confirmed = await call(server.admin, "/api/bans", bearer, { address: "0.0.0.0/0", ttl: "1m", force: true });
    assert.equal(confirmed.status, 201, JSON.stringify(confirmed.json));
    assert.equal(confirmed.json.ban.prefix, "0.0.0.0/0");
    assert.equal((await call(server.admin, "/api/allow", bearer, { address: "::/0", force: "yes" })).status, 400, "only true confirms");
  },
  { timeoutMs: 30_000 },
);
