import assert from "node:assert/strict";
import { looksLikeProxyHeader, parseProxyHeader } from "../../src/net/proxy-protocol.ts";
import { test } from "../harness.ts";
import { PROXY_V2_SIGNATURE, proxyV2 } from "../helpers/proxy.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const SIGNATURE = PROXY_V2_SIGNATURE;

test("PROXY v1: TCP4, TCP6 and UNKNOWN, with the client's bytes after it left alone", () => {
  const v4 = enc("PROXY TCP4 192.0.2.55 198.51.100.1 40000 25\r\nEHLO x\r\n");
  assert.deepEqual(parseProxyHeader(v4), {
    status: "ok",
    version: 1,
    source: { address: "192.0.2.55", port: 40000 },
    destination: { address: "198.51.100.1", port: 25 },
    length: 45,
  });
  assert.deepEqual(parseProxyHeader(enc("PROXY TCP6 2001:db8::7 2001:db8::1 5000 25\r\n")), {
    status: "ok",
    version: 1,
    source: { address: "2001:db8::7", port: 5000 },
    destination: { address: "2001:db8::1", port: 25 },
    length: 44,
  });
  assert.deepEqual(parseProxyHeader(enc("PROXY UNKNOWN\r\n")), {
    status: "ok",
    version: 1,
    source: undefined,
    destination: undefined,
    length: 15,
  });
});

test("PROXY v2: IPv4, IPv6 and LOCAL (a proxy's own health check)", () => {
  assert.deepEqual(parseProxyHeader(proxyV2([192, 0, 2, 66], 41000)), {
    status: "ok",
    version: 2,
    source: { address: "192.0.2.66", port: 41000 },
    destination: { address: "127.0.0.1", port: 25 },
    length: 28,
  });
  const v6 = parseProxyHeader(proxyV2([0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 9], 42000));
  assert.deepEqual(v6, {
    status: "ok",
    version: 2,
    source: { address: "2001:db8:0:0:0:0:0:9", port: 42000 },
    destination: { address: "0:0:0:0:0:0:0:0", port: 25 },
    length: 52,
  });
  const local = Uint8Array.from([...SIGNATURE, 0x20, 0x00, 0, 0]);
  assert.deepEqual(parseProxyHeader(local), { status: "ok", version: 2, source: undefined, destination: undefined, length: 16 });
});

test("every header split at every byte boundary is incomplete until its last byte", () => {
  for (const header of [enc("PROXY TCP4 192.0.2.55 198.51.100.1 40000 25\r\n"), proxyV2([192, 0, 2, 66], 41000)]) {
    for (let cut = 0; cut < header.length; cut++) {
      assert.equal(parseProxyHeader(header.subarray(0, cut)).status, "incomplete", `cut at ${cut}`);
    }
    assert.equal(parseProxyHeader(header).status, "ok");
  }
});

test("malformed headers are invalid, with the reason", () => {
  const cases: [Uint8Array, RegExp][] = [
    [enc("EHLO client.example\r\n"), /no PROXY header/],
    [enc("PROXY TCP4 192.0.2.55 198.51.100.1 40000\r\n"), /v1 header malformed/],
    [enc("PROXY TCP4 2001:db8::1 198.51.100.1 40000 25\r\n"), /v1 header malformed/],
    [enc("PROXY TCP4 192.0.2.55 198.51.100.1 70000 25\r\n"), /v1 header malformed/],
    [enc("PROXY TCP4 192.0.2.55 198.51.100.1 40000 25\n"), /not ended by CRLF/],
    [enc(`PROXY ${"x".repeat(120)}`), /longer than 107 bytes/],
    [Uint8Array.from([...SIGNATURE, 0x11, 0x11, 0, 12, ...new Array(12).fill(0)]), /version 1/],
    [Uint8Array.from([...SIGNATURE, 0x22, 0x11, 0, 12, ...new Array(12).fill(0)]), /command 2/],
    [Uint8Array.from([...SIGNATURE, 0x21, 0x31, 0, 0]), /unsupported family/],
    [Uint8Array.from([...SIGNATURE, 0x21, 0x11, 0xff, 0xff]), /claims 65535 bytes/],
  ];
  for (const [bytes, reason] of cases) {
    const result = parseProxyHeader(bytes);
    assert.equal(result.status, "invalid", new TextDecoder().decode(bytes));
    assert.match(result.status === "invalid" ? result.reason : "", reason);
  }
  assert.ok(looksLikeProxyHeader(enc("PROXY TCP4 1.2.3.4")));
  assert.ok(looksLikeProxyHeader(proxyV2([1, 2, 3, 4], 5)));
  assert.ok(!looksLikeProxyHeader(enc("EHLO x")));
});
