import { escapeLogText } from "./escape.ts";
import type { LogValue } from "./logger.ts";

/**
 * MXSCREEN_LOG=postfix: postscreen's own log lines, in the format strings of Postfix's source
 * (postscreen.c, postscreen_early.c, _misc.c, _smtpd.c; smtpd_check.c for smtpd's NOQUEUE
 * line; test/log/postfix.test.ts names the function of each), behind a syslog prefix with an
 * RFC 3339 time, so pflogsumm and the dashboards written for postscreen read mxscreen's log
 * unchanged. One entry may become several lines, as one postscreen connection does (CONNECT,
 * a verdict, DISCONNECT).
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

/**
 * Elapsed time as postscreen prints it (`after 0.3`): Postfix's format_tv with two significant
 * digits and at most two decimals (postscreen_misc.c psc_format_delta_time, util/format_tv.c),
 * rounded half up: 0.004 → 0, 0.123 → 0.12, 1.25 → 1.3, 12.6 → 13.
 */
export function postscreenSeconds(ms: LogValue): string {
  if (typeof ms !== "number" || !(ms > 0)) return "0";
  const whole = Math.floor(ms / 1000);
  const decimals = whole >= 10 ? 0 : whole >= 1 ? 1 : 2;
  const scale = 10 ** decimals;
  const rounded = Math.floor((ms / 1000) * scale + 0.5 + 1e-9) / scale;
  return String(rounded);
}

/** The command a session was at when it ended (postscreen's `where`). */
function where(fields: Fields): string {
  return typeof fields.after === "string" ? fields.after : "CONNECT";
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
    lines.push(
      `qmgr: ${id}: from=<${clientText(fields.from)}>, size=${fields.size ?? 0}, nrcpt=${recipients(fields.to).length} (queue active)`,
    );
  }
  const agent = fields.action === "relay" ? "smtp" : "virtual";
  const relay = fields.action === "relay" ? String(fields.relay ?? "upstream") : "spool";
  const status = ok ? "sent" : "deferred";
  const dsn = ok ? "2.0.0" : "4.3.0";
  const reply = clientText(fields.reply ?? (ok ? `queued as ${id}` : fields.reason));
  for (const to of recipients(fields.to)) {
    lines.push(
      `${agent}: ${id}: to=<${clientText(to)}>, relay=${relay}, delay=${
        postscreenSeconds(fields.duration_ms)
      }, dsn=${dsn}, status=${status} (${reply})`,
    );
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
      // postscreen's line is the address alone; which ban, why and by whom follow on a line of ours.
      return [
        `DENYLISTED ${client}`,
        `BANNED ${client}${rest(fields, ["duration_ms"])}`,
        ...(fields.action === "reject"
          ? [
            `NOQUEUE: reject: CONNECT from ${client}: 554 5.7.1 Service unavailable; client [${
              addressOf(fields.client as string)
            }] blocked using mxscreen ban list; proto=SMTP`,
          ]
          : []),
      ];
    case "PREGREET":
      return [`PREGREET ${fields.bytes ?? 0} after ${postscreenSeconds(fields.after_ms)} from ${client}: ${clientText(fields.sent)}`];
    case "HANGUP":
      return [`HANGUP after ${postscreenSeconds(fields.after_ms)} from ${client} in tests before SMTP handshake`];
    case "DNSBL":
      return [`DNSBL rank ${fields.dnsbl_score ?? fields.score ?? 0} for ${client}`];
    case "NON-SMTP": {
      // The verb as postscreen's printable() leaves it, then the whole line escaped.
      const sent = String(fields.sent ?? "");
      const verb = sent.split(" ")[0].replace(/[^\x20-\x7e]/g, "?");
      return [`NON-SMTP COMMAND from ${client} after ${where(fields)}: ${verb.slice(0, 100)} ${clientText(sent)}`];
    }
    case "BARE-LF":
      return [`BARE NEWLINE from ${client} after ${clientText(fields.sent)}`];
    case "PIPELINING":
      return [`COMMAND PIPELINING from ${client} after ${clientText(fields.command)}: ${clientText(fields.ahead)}`];
    case "TIMEOUT":
      return [`COMMAND TIME LIMIT from ${client} after ${where(fields)}`];
    case "COMMAND-LIMIT":
      return [`COMMAND COUNT LIMIT from ${client} after ${where(fields)}`];
    case "CONNECTION-LIMIT":
      return [`NOQUEUE: reject: CONNECT from ${client}: ${fields.limit === "total" ? "all server ports busy" : "too many connections"}`];
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
    return [
      stamp(
        time,
        `smtpd[${prefix.pid}]: NOQUEUE: reject: ${fields.stage} from unknown[${addressOf(client)}]: ${reply}; from=<${
          clientText(fields.from)
        }>${to} proto=ESMTP helo=<${clientText(fields.helo)}>`,
      ),
    ];
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
  lines.push(stamp(time, postscreen(`DISCONNECT ${bracketed(fields.client as string)}`)));
  return lines;
}
