import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { tempDir } from "./server.ts";

/** A self-signed certificate and key made with Debian's openssl, for a given common name (and subjectAltName entries: `IP:127.0.0.1`). */
export function makeCertificate(commonName: string, dir = tempDir(), altNames: readonly string[] = []): { cert: string; key: string } {
  const cert = join(dir, `${commonName}.crt`);
  const key = join(dir, `${commonName}.key`);
  const san = altNames.length === 0 ? [] : ["-addext", `subjectAltName=${altNames.join(",")}`];
  const result = spawnSync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    `/CN=${commonName}`,
    ...san,
  ], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`openssl could not make a certificate: ${result.stderr ?? result.error?.message}`);
  return { cert, key };
}

/** `openssl s_client -starttls smtp`: what a real TLS client negotiated, and the server's answers inside TLS. */
export function sClient(port: number, extra: string[], input: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn("openssl", [
      "s_client",
      "-starttls",
      "smtp",
      "-connect",
      `127.0.0.1:${port}`,
      "-servername",
      "mx.test.example",
      "-ign_eof",
      ...extra,
    ], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => out += d);
    child.stderr.setEncoding("utf8").on("data", (d: string) => out += d);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", () => {
      clearTimeout(timer);
      resolve(out);
    });
    // One command at a time, as a real client sends them: several in one write is pipelining.
    const lines = input.split(/(?<=\r\n)/).filter((l) => l !== "");
    lines.forEach((line, i) => setTimeout(() => (i === lines.length - 1 ? child.stdin.end(line) : child.stdin.write(line)), 500 + 300 * i));
  });
}
