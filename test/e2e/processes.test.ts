import assert from "node:assert/strict";
import process from "node:process";
import { test } from "../harness.ts";
import { eventually } from "../helpers/eventually.ts";
import { alive } from "../helpers/pid.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer } from "../helpers/server.ts";

const E2E = { timeoutMs: 60_000 };

const pidOf = (line: string) => Number(/ pid=(\d+)/.exec(line)![1]);

test(
  "MXSCREEN_PROCESSES=2: both processes take clients on one port, share bans, a dead one is restarted, none outlives the first",
  async () => {
    const server = await startServer(
      { MXSCREEN_PROCESSES: "2", MXSCREEN_GREET_WAIT: "20s", MXSCREEN_MAX_CONN_PER_PREFIX: "1000" },
      { admin: true },
    );
    const adminPort = Number(new URL(server.admin).port);
    const siblingAdmin = `http://127.0.0.1:${adminPort + 1}`;
    const second = await server.waitForLine(
      new RegExp(`msg="mxscreen started" .*admin=127\\.0\\.0\\.1:${adminPort + 1} .*process=2/2 pid=\\d+`),
    );
    await server.waitForLine(/msg="mxscreen started" .*process=1\/2 pid=\d+/);
    const metrics = async (base = server.admin) => await (await fetch(`${base}/metrics`)).text();
    const openOn = async (base: string) => Number(/^mxscreen_open_connections (\d+)$/m.exec(await metrics(base))![1]);
    assert.match(await metrics(), /^mxscreen_processes 2$/m);

    // The kernel spreads connections over both listeners; each process reports its own on its admin port.
    const clients = await Promise.all(Array.from({ length: 24 }, (_, i) => RawClient.open(server.port, `127.0.50.${i + 1}`)));
    await Promise.all(clients.map((client) => client.until(/^220-/m)));
    const [first, other] = [await openOn(server.admin), await openOn(siblingAdmin)];
    assert.ok(first > 0 && other > 0 && first + other === 24, `the processes hold ${first} and ${other} of 24`);
    for (const client of clients) client.socket.destroy();

    // A ban made through the first process's API is enforced by both. Both processes write to
    // one database file, so the ban may wait in the write queue for a moment (202).
    const ban = await fetch(`${server.admin}/api/bans`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ address: "127.0.51.0/24", reason: "test" }),
    });
    assert.ok(ban.status === 201 || ban.status === 202, `${ban.status} ${await ban.text()}`);
    // Twelve clients land on both processes: each must refuse them.
    await eventually("both processes enforce the ban", async () => {
      const round = await Promise.all(Array.from({ length: 12 }, (_, i) => RawClient.open(server.port, `127.0.51.${i + 1}`)));
      await Promise.all(round.map((client) => client.until(/^(554|220-)/m)));
      for (const client of round) client.socket.destroy();
      return round.every((client) => /^554 5\.7\.1 /.test(client.text));
    });

    const siblingPid = pidOf(second);
    process.kill(siblingPid, "SIGKILL");
    await server.waitForLine(/level=error msg="process 1 exited \(SIGKILL\): starting it again in 1000 ms"/);
    const restarted = await server.waitForLine(new RegExp(`msg="mxscreen started" .*process=2/2 pid=(?!${siblingPid})\\d+`));
    await eventually("the metrics count the restarted process", async () => /^mxscreen_processes 2$/m.test(await metrics()));

    // However the first process ends, its siblings leave with it.
    process.kill(server.process.pid!, "SIGKILL");
    await eventually("the sibling exits once the first process is gone", () => !alive(pidOf(restarted)));
  },
  E2E,
);

test("MXSCREEN_PROCESSES=2: a client that passed on one process is greeted at once by both within a second", async () => {
  const server = await startServer({ MXSCREEN_PROCESSES: "2", MXSCREEN_GREET_WAIT: "1s", MXSCREEN_MAX_CONN_PER_PREFIX: "1000" });
  await server.waitForLine(/msg="mxscreen started" .*process=2\/2/);
  for (const round of [1, 2, 3]) {
    const addresses = Array.from({ length: 20 }, (_, i) => `127.0.${52 + round}.${i + 1}`);
    // Both processes end their sessions at the same moment: their writes to the one database file meet.
    await Promise.all(addresses.map(async (address) => {
      const client = await RawClient.greeted(server.port, address);
      await client.command("EHLO client.example.net", /^250 /m);
      await client.command("QUIT", /^221 /m);
    }));
    await new Promise((resolve) => setTimeout(resolve, 800));
    const again = await Promise.all(
      addresses.flatMap((address) => [address, address]).map(async (address) => {
        const client = await RawClient.open(server.port, address);
        await client.until(/^220[ -]/m);
        client.socket.destroy();
        return client.text;
      }),
    );
    const waited = again.filter((text) => text.startsWith("220-")).length;
    assert.equal(waited, 0, `round ${round}: ${waited} of 40 reconnections were made to wait again`);
  }
}, E2E);
