import { readFileSync } from "node:fs";
import type { UpstreamTls } from "../delivery/upstream-machine.ts";
import { ConfigError } from "./config-error.ts";
import { parseChoice } from "./values.ts";

export interface UpstreamTlsConfig {
  /** MXSCREEN_UPSTREAM_TLS. */
  readonly tls: UpstreamTls;
  /** MXSCREEN_UPSTREAM_TLS_CA's PEM text; undefined: the system's trust store. */
  readonly tlsCa: string | undefined;
}

/**
 * MXSCREEN_UPSTREAM_TLS (`may`, `verify`, `off`) and MXSCREEN_UPSTREAM_TLS_CA, a PEM file read
 * once at start, so that a file that cannot be read stops start-up rather than every relayed
 * session.
 */
export function parseUpstreamTls(get: (name: string) => string | undefined): UpstreamTlsConfig {
  const tls = parseChoice("MXSCREEN_UPSTREAM_TLS", get("MXSCREEN_UPSTREAM_TLS") ?? "may", ["may", "verify", "off"]);
  const caPath = get("MXSCREEN_UPSTREAM_TLS_CA");
  if (caPath === undefined) return { tls, tlsCa: undefined };
  let tlsCa: string;
  try {
    tlsCa = readFileSync(caPath.trim(), "utf8");
  } catch (error) {
    throw new ConfigError("MXSCREEN_UPSTREAM_TLS_CA", caPath, `a readable PEM file of CA certificates (${(error as Error).message})`);
  }
  if (!tlsCa.includes("-----BEGIN CERTIFICATE-----")) {
    throw new ConfigError("MXSCREEN_UPSTREAM_TLS_CA", caPath, "a PEM file of CA certificates (-----BEGIN CERTIFICATE-----); it holds none");
  }
  return { tls, tlsCa };
}
