/**
 * RFC 5321 4.5.2 transparency for content sent on to another server: every line that begins
 * with "." gets another. `text` is whole lines ending in CRLF; it comes back untouched (no copy)
 * when no line needs it.
 */
export function dotStuff(text: Uint8Array): Uint8Array {
  let dots = text[0] === 0x2e ? 1 : 0;
  for (let i = text.indexOf(0x0a); i >= 0 && i + 1 < text.length; i = text.indexOf(0x0a, i + 1)) {
    if (text[i + 1] === 0x2e) dots++;
  }
  if (dots === 0) return text;
  const out = new Uint8Array(text.length + dots);
  let at = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === 0x2e && (i === 0 || text[i - 1] === 0x0a)) out[at++] = 0x2e;
    out[at++] = text[i];
  }
  return out;
}
