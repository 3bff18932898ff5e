import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { eventually } from "../helpers/eventually.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer } from "../helpers/server.ts";

const E2E = { timeoutMs: 60_000, alone: true };
const ROOMY = { MXSCREEN_MAX_CONN_PER_CLIENT: "1000", MXSCREEN_MAX_CONN_PER_PREFIX: "1000" };

/** Opens `count` clients from 127.0.<third>.x, not waiting for anything. Refused or stuck ones come back too. */
function openMany(port: number, third: number, count: number): Promise<RawClient[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => RawClient.open(port, `127.0.${third}.${i + 1}`)));
}

test("past MXSCREEN_MAX_CONNECTIONS a new client gets 421 4.3.2 at once, is not banned, and gets in once there is room", async () => {
  const server = await startServer({ ...ROOMY, MXSCREEN_MAX_CONNECTIONS: "10", MXSCREEN_GREET_WAIT: "20s" });
  const held = await openMany(server.port, 40, 10);
  await Promise.all(held.map((client) => client.until(/^220-/m)));
  const started = Date.now();
  const refused = await RawClient.open(server.port, "127.0.41.1");
  assert.match(await refused.until(/^421 4\.3\.2 mx\.test\.example All server ports are busy/m), /421 4\.3\.2/);
  await refused.closed;
  assert.ok(Date.now() - started < 1_000, `refused in ${Date.now() - started} ms`);
  await server.waitForLine(/event=CONNECTION-LIMIT client=127\.0\.41\.1:\d+ .*limit=total .*action=close/);
  for (const client of held) client.socket.destroy();
  await eventually("the server saw the ten leave", () => server.lines.filter((line) => /event=HANGUP/.test(line)).length === 10);
  const later = await RawClient.open(server.port, "127.0.41.1");
  await later.until(/^220-/m, 5_000);
}, E2E);

test("a process that ran out of open files (EMFILE) accepts and greets again once clients leave", async () => {
  // 128 files, of which the runtime itself holds some: 150 clients run it out.
  const server = await startServer({ ...ROOMY, MXSCREEN_MAX_CONNECTIONS: "128", MXSCREEN_GREET_WAIT: "30s" }, { openFiles: 128 });
  const flood = await openMany(server.port, 42, 150);
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  const greeted = flood.filter((client) => /^220-/m.test(client.text)).length;
  assert.ok(greeted < 150, `the limit was reached: ${greeted} of 150 greeted`);
  for (const client of flood) client.socket.destroy();
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const after = await openMany(server.port, 43, 5);
  await Promise.all(after.map((client) => client.until(/^220-/m, 10_000)));
}, E2E);

test("under stress the greet wait shortens, and it comes back when the load drops", async () => {
  const server = await startServer({
    ...ROOMY,
    MXSCREEN_STRESS_CONNECTIONS: "5",
    MXSCREEN_GREET_WAIT: "4s",
    MXSCREEN_GREET_WAIT_STRESS: "1s",
  });
  const load = await openMany(server.port, 44, 5);
  await Promise.all(load.map((client) => client.until(/^220-/m)));
  await server.waitForLine(/level=warn msg="under stress: greet wait shortened" open=5 threshold=5 greet_wait_ms=1000/);
  const stressed = await RawClient.open(server.port, "127.0.45.1");
  await stressed.until(/^220 /m, 3_000);
  const waited = stressed.received.at(-1)!.at - stressed.opened;
  assert.ok(waited >= 900 && waited < 2_500, `greeted after ${waited} ms under stress`);
  stressed.socket.destroy();
  for (const client of load) client.socket.destroy();
  await server.waitForLine(/level=info msg="stress over: greet wait restored" open=\d threshold=5 greet_wait_ms=4000/);
  const calm = await RawClient.open(server.port, "127.0.45.2");
  await calm.until(/^220 /m, 6_000);
  const calmWait = calm.received.at(-1)!.at - calm.opened;
  assert.ok(calmWait >= 3_900, `greeted after ${calmWait} ms with the load gone`);
}, E2E);
