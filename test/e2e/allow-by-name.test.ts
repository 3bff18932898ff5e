import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer } from "../helpers/server.ts";

test(
  "MXSCREEN_ALLOW .domain: a client whose confirmed name is under it skips the greet wait and wins over a ban; others do not",
  async () => {
    const server = await startServer({
      MXSCREEN_TRUSTED_PROXIES: "127.0.15.0/24",
      MXSCREEN_ALLOW: ".lists.example",
      MXSCREEN_GREET_WAIT: "3s",
    }, {
      admin: true,
      dns: [
        "--host-record=mail.lists.example,192.0.2.90",
        "--host-record=mx.other.example,192.0.2.91",
        "--host-record=x.lists.example,192.0.2.92",
      ],
    });
    for (const address of ["192.0.2.90", "192.0.2.91"]) {
      const response = await fetch(`${server.admin}/api/bans`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ address }),
      });
      assert.equal(response.status, 201);
      await response.body?.cancel();
    }
    const via = async (source: string, address: string) => {
      const c = await RawClient.open(server.port, source);
      c.write(`PROXY TCP4 ${address} 127.0.0.1 40000 25\r\n`);
      return c;
    };

    const listHost = await via("127.0.15.1", "192.0.2.90");
    await listHost.until(/^220 mx\.test\.example ESMTP\r\n$/, 2000);
    listHost.write("QUIT\r\n");
    await listHost.waitClosed();
    await server.waitForLine(/event=ALLOWED client=192\.0\.2\.90:40000 .*allow="MXSCREEN_ALLOW \.lists\.example \(mail\.lists\.example\)"/);

    const other = await via("127.0.15.2", "192.0.2.91");
    await other.waitClosed();
    assert.match(other.text, /^554 5\.7\.1 /, "a name outside the entry changes nothing");

    const fresh = await via("127.0.15.3", "192.0.2.92");
    await fresh.until(/^220 mx\.test\.example ESMTP\r\n/m, 2000);
    assert.ok(fresh.arrival(/^220 /m)! < 2000, "released from the 3 s greet wait as soon as its name was confirmed");
    fresh.write("QUIT\r\n");
    await fresh.waitClosed();
    await server.waitForLine(/event=ALLOWED client=192\.0\.2\.92:40000 /);
  },
  { timeoutMs: 30_000 },
);
