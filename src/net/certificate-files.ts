import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createSecureContext } from "node:tls";
import type { TlsCredentials } from "./types.ts";

/**
 * The STARTTLS certificate and key from PEM files, checked to belong together, and reloaded
 * on request (SIGHUP) or when either file changes. A reload that fails keeps the pair in use.
 */
export class CertificateFiles {
  private credentials: TlsCredentials;
  private stamp: string;
  private timer: ReturnType<typeof setInterval> | undefined;

  /** Throws with the file and the reason when the pair cannot be used. */
  constructor(private readonly certPath: string, private readonly keyPath: string) {
    this.credentials = this.read();
    this.stamp = this.modified();
  }

  get current(): TlsCredentials {
    return this.credentials;
  }

  /** Loads the files again; returns why not when they cannot be used (the old pair stays). */
  reload(): string | undefined {
    try {
      this.credentials = this.read();
      this.stamp = this.modified();
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }

  /** Checks the files every `intervalMs` and reloads them when they changed. */
  watch(intervalMs: number, onReload: (error: string | undefined) => void): void {
    this.timer ??= setInterval(() => {
      let stamp: string;
      try {
        stamp = this.modified();
      } catch {
        return;
      }
      if (stamp !== this.stamp) onReload(this.reload());
    }, intervalMs);
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  private modified(): string {
    return [this.certPath, this.keyPath].map((p) => {
      const s = statSync(p);
      return `${s.mtimeMs}:${s.size}:${s.ino}`;
    }).join("|");
  }

  private read(): TlsCredentials {
    const load = (variable: string, path: string) => {
      try {
        return readFileSync(path, "utf8");
      } catch (error) {
        throw new Error(`cannot read ${variable}=${path}: ${(error as Error).message}`);
      }
    };
    const cert = load("MXSCREEN_TLS_CERT", this.certPath);
    const key = load("MXSCREEN_TLS_KEY", this.keyPath);
    try {
      createSecureContext({ cert, key });
      // Deno's createSecureContext accepts a key that does not belong to the certificate.
      const fromKey = createPublicKey(createPrivateKey(key)).export({ type: "spki", format: "der" });
      const fromCert = new X509Certificate(cert).publicKey.export({ type: "spki", format: "der" });
      if (Buffer.compare(fromKey, fromCert) !== 0) throw new Error("the key does not belong to the certificate");
    } catch (error) {
      throw new Error(
        `MXSCREEN_TLS_CERT=${this.certPath} and MXSCREEN_TLS_KEY=${this.keyPath} cannot be used together: ${(error as Error).message}`,
      );
    }
    return { cert, key };
  }
}
