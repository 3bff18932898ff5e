/**
 * Client bytes as text, one character per byte, clipped: the form client-supplied evidence
 * travels in until the log formatter escapes it.
 */
export function bytesToText(bytes: Uint8Array, limit = 100): string {
  let out = "";
  const end = Math.min(bytes.length, limit);
  for (let i = 0; i < end; i++) out += String.fromCharCode(bytes[i]);
  return out;
}

/**
 * Every CR, LF, quote, backslash, control character and anything outside printable ASCII is
 * spelled out, so no client can forge or split a log line.
 */
export function escapeLogText(text: string): string {
  let out = "";
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (ch === "\r") out += "\\r";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else if (c <= 0xff) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += `\\u{${c.toString(16)}}`;
  }
  return out;
}
