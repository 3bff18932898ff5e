import type { Config } from "../src/config/config.ts";
import type { RunnerConfig } from "./types.ts";

/** What every session runner is told of the configuration; `tls`: a certificate is loaded, so STARTTLS is offered. */
export function runnerConfig(config: Config, tls: boolean): RunnerConfig {
  return {
    spoolDir: config.spoolDir,
    dns: { server: config.dns, timeoutMs: config.dnsTimeoutMs },
    upstream: config.upstream && { ...config.upstream, hostname: config.hostname },
    session: {
      hostname: config.hostname,
      maxMessageSize: config.maxMessageSize,
      maxLineLength: config.maxLineLength,
      maxRecipients: config.maxRecipients,
      commandTimeoutMs: config.commandTimeoutMs,
      dataTimeoutMs: config.dataTimeoutMs,
      stressTimeoutMs: config.stressTimeoutMs,
      pipelining: config.pipelining,
      bareCr: config.bareCr,
      acceptDomains: config.acceptDomains,
      tls,
      relay: config.upstream !== undefined,
      checks: config.checks,
      actions: config.checkActions,
      observe: config.mode === "observe",
      tarpit: { delayMs: config.tarpit.delayMs, maxMs: config.tarpit.maxMs },
    },
  };
}
