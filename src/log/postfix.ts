import { escapeLogText } from "./escape.ts";
import type { LogValue } from "./logger.ts";

/**
 * MXSCREEN_LOG=postfix: postscreen's own log grammar (postscreen_early.c, _smtpd.c, _dnsbl.c)
 * behind a syslog prefix with an RFC 3339 time, so pflogsumm and the dashboards written for
 * postscreen read mxscreen's log unchanged. One entry may become several lines, as one
 * postscreen connection does (CONNECT, a verdict, DISCONNECT).
 */
export interface PostfixPrefix {
  readonly hostname: string;
  readonly pid: number;
}

type Fields = Record<string, LogValue>;

/** `192.0.2.1:25` or `[2001:db8::1]:25` (the log's client form) as postscreen writes it: `[192.0.2.1]:25`. */
function bracketed(label: string | undefined): string {
  if (label === undefined) return "[unknown]:0";
  if (label.startsWith("[")) return label;
  const colon = label.lastIndexOf(":");
  return colon < 0 ? `[${label}]` : `[${label.slice(0, colon)}]:${label.slice(colon + 1)}`;
}

function addressOf(label: string | undefined): string {
  return /^\[([^\]]*)\]/.exec(bracketed(label))?.[1] ?? "unknown";
}

/** Seconds as postscreen prints elapsed time (`after 0.3`). */
function seconds(ms: LogValue): string {
  return typeof ms === "number" ? String(Math.round(ms / 100) / 10) : "0";
}

/** Client text, escaped as in every format, and clipped as postscreen clips it (`%.100s`). */
function clientText(value: LogValue): string {
  return escapeLogText(String(value ?? "")).slice(0, 100);
}

const SKIPPED = new Set(["event", "client", "local", "action", "level", "msg"]);

/** What postscreen has no words for, kept as `key=value` after its own form, never dropped. */
function rest(fields: Fields, used: readonly string[] = []): string {
  const parts = Object.entries(fields)
    .filter(([key, value]) => value !== undefined && !SKIPPED.has(key) && !used.includes(key))
    .map(([key, value]) => `${key}=${typeof value === "string" ? clientText(value) : value}`);
  return parts.length === 0 ? "" : ` ${parts.join(" ")}`;
}

function recipients(value: LogValue): string[] {
  return value === undefined || value === "" ? [] : String(value).split(",");
}

/** A message's trace in the lines pflogsumm counts: received (client=), its size, each recipient's outcome. */
function messageTrace(fields: Fields, ok: boolean): string[] {
  const id = String(fields.queue_id ?? "NOQUEUE");
  const lines = [`postscreen: ${id}: client=unknown[${addressOf(fields.client as string | undefined)}]`];
  if (fields.from !== undefined || fields.size !== undefined) {
    lines.push(`qmgr: ${id}: from=<${clientText(fields.from)}>, size=${fields.size ?? 0}, nrcpt=${recipients(fields.to).length} (queue active)`);
  }
  const agent = fields.action === "relay" ? "smtp" : "virtual";
  const relay = fields.action === "relay" ? String(fields.relay ?? "upstream") : "spool";
  const status = ok ? "sent" : "deferred";
  const dsn = ok ? "2.0.0" : "4.3.0";
  const reply = clientText(fields.reply ?? (ok ? `queued as ${id}` : fields.reason));
  for (const to of recipients(fields.to)) {
    lines.push(`${agent}: ${id}: to=<${clientText(to)}>, relay=${relay}, delay=${seconds(fields.duration_ms)}, dsn=${dsn}, status=${status} (${reply})`);
  }
  if (!ok && recipients(fields.to).length === 0) lines.push(`postscreen: warning: ${id}: not stored: ${reply}`);
  return lines;
}

/** The verdict of one connection, in postscreen's words where it has them. */
function verdict(event: string, fields: Fields): string[] {
  const client = bracketed(fields.client as string | undefined);
  switch (event) {
    case "PASS NEW":
    case "PASS OLD":
      return [`${event} ${client}`];
    case "ALLOWED":
      return [`ALLOWLISTED ${client}`];
    case "BANNED":
      return [
        `DENYLISTED ${client}${rest(fields, ["duration_ms"])}`,
        ...(fields.action === "reject"
          ? [`NOQUEUE: reject: CONNECT from ${client}: 554 5.7.1 Service unavailable; client [${addressOf(fields.client as string)}] blocked using mxscreen ban list; proto=SMTP`]
          : []),
      ];
    case "PREGREET":
      return [`PREGREET ${fields.bytes ?? 0} after ${seconds(fields.after_ms)} from ${client}: ${clientText(fields.sent)}`];
    case "HANGUP":
      return [`HANGUP after ${seconds(fields.after_ms)} from ${client} in tests before SMTP handshake`];
    case "DNSBL":
      return [`DNSBL rank ${fields.dnsbl_score ?? fields.score ?? 0} for ${client}`];
    case "NON-SMTP":
      return [`NON-SMTP COMMAND from ${client} after CONNECT: ${clientText(fields.sent)}`];
    case "BARE-LF":
      return [`BARE NEWLINE from ${client} after ${clientText(fields.sent).split(" ")[0] || "CONNECT"}`];
    case "PIPELINING":
      return [`COMMAND PIPELINING from ${client} after ${clientText(fields.command)}`];
    case "TIMEOUT":
      return [`COMMAND TIME LIMIT from ${client} after ${seconds(fields.duration_ms)}`];
    case "LIMIT":
      if (fields.limit === "total") return [`NOQUEUE: reject: CONNECT from ${client}: all server ports busy`];
      if (fields.limit === "commands") return [`COMMAND COUNT LIMIT from ${client} after ${fields.commands ?? 0}`];
      return [`NOQUEUE: reject: CONNECT from ${client}: too many connections`];
    default:
      return [`${event} ${client}${rest(fields)}`];
  }
}

/** The lines for one log entry, each with its syslog prefix; `time` is when it was logged. */
export function formatPostfix(fields: Fields, time: Date, prefix: PostfixPrefix): string[] {
  const stamp = (at: Date, text: string) => `${at.toISOString()} ${prefix.hostname} postfix/${text}`;
  const postscreen = (text: string) => `postscreen[${prefix.pid}]: ${text}`;
  const event = String(fields.event ?? "");
  if (fields.level !== undefined) {
    const level = fields.level === "info" ? "" : `${fields.level === "warn" ? "warning" : String(fields.level)}: `;
    return [stamp(time, postscreen(`${level}${escapeLogText(String(fields.msg ?? ""))}${rest(fields)}`))];
  }
  if (event === "REJECT") {
    // smtpd's own form, which pflogsumm counts as a reject: NOQUEUE: reject: RCPT from …: reply; from=<…> to=<…> proto=ESMTP helo=<…>
    const client = fields.client as string | undefined;
    const reply = clientText(fields.reply).replace(/\\r\\n/g, " ");
    const to = fields.to === undefined ? "" : ` to=<${clientText(fields.to)}>`;
    return [stamp(time, `smtpd[${prefix.pid}]: NOQUEUE: reject: ${fields.stage} from unknown[${addressOf(client)}]: ${reply}; from=<${clientText(fields.from)}>${to} proto=ESMTP helo=<${clientText(fields.helo)}>`)];
  }
  if (event === "DELIVERED" || event === "DELIVERY-FAILED") {
    return messageTrace(fields, event === "DELIVERED").map((line) => {
      const [agent, ...text] = line.split(": ");
      return stamp(time, `${agent}[${prefix.pid}]: ${text.join(": ")}`);
    });
  }
  const concluded = fields.duration_ms !== undefined && fields.client !== undefined;
  if (!concluded) return [stamp(time, postscreen(`${event} ${bracketed(fields.client as string | undefined)}${rest(fields)}`))];
  // Only the conclusion knows the whole connection: CONNECT is written then, stamped when it came.
  const opened = new Date(time.getTime() - Number(fields.duration_ms));
  const local = fields.local === undefined ? "" : ` to ${bracketed(String(fields.local))}`;
  const lines = [stamp(opened, postscreen(`CONNECT from ${bracketed(fields.client as string)}${local}`))];
  // postscreen logs a client's DNSBL rank whatever else it finds; the verdict line says it when it is DNSBL.
  if (event !== "DNSBL" && typeof fields.dnsbl_score === "number" && fields.dnsbl_score > 0) {
    lines.push(stamp(time, postscreen(`DNSBL rank ${fields.dnsbl_score} for ${bracketed(fields.client as string)}`)));
  }
  for (const line of verdict(event, fields)) lines.push(stamp(time, postscreen(line)));
  if (fields.commands !== undefined) lines.push(stamp(time, postscreen(`DISCONNECT ${bracketed(fields.client as string)}`)));
  return lines;
}
