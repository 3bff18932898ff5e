import { ConfigError } from "../config/config-error.ts";

/** A weighted DNSBL/DNSWL entry, postscreen style: `zone=127.0.0.[2..11]*3`. */
export interface DnsblSite {
  readonly zone: string;
  /** Per octet, the accepted values; undefined accepts any 127.0.0.0/8 answer but 127.255.255.x. */
  readonly filter: readonly (readonly [number, number])[][] | undefined;
  readonly weight: number;
}

const DNSBL_EXPECTED =
  "comma-separated zone[=filter][*weight] items, postscreen style, e.g. zen.example*3,list.dnswl.example=127.0.[0..255].[1..3]*-4";

/** `zen.example*3,list.dnswl.example=127.0.[0..255].[1..3]*-4` (postscreen_dnsbl_sites). */
export function parseDnsblSites(variable: string, text: string): DnsblSite[] {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "").map((item) => {
    const m = /^([A-Za-z0-9.-]+)(?:=([0-9.;\[\]]+))?(?:\*(-?\d{1,4}))?$/.exec(item);
    const zone = m?.[1].toLowerCase().replace(/\.$/, "") ?? "";
    if (!m || !/^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(zone)) {
      throw new ConfigError(variable, text, `${DNSBL_EXPECTED} (${JSON.stringify(item)} is not one)`);
    }
    const filter = m[2] === undefined ? undefined : parseDnsblFilter(m[2]);
    if (filter === null) {
      throw new ConfigError(variable, text, `${DNSBL_EXPECTED} (the filter in ${JSON.stringify(item)} is not four octets)`);
    }
    return { zone, filter, weight: m[3] === undefined ? 1 : Number(m[3]) };
  });
}

/** `127.0.[0..255].[1..3;5]` → per octet, inclusive ranges; null when malformed. */
function parseDnsblFilter(text: string): [number, number][][] | null {
  const octets = text.match(/\[[^\]]*\]|[^.\[\]]+/g) ?? [];
  if (octets.join(".").length !== text.length || octets.length !== 4) return null;
  const ranges = octets.map((octet) => {
    const items = octet.startsWith("[") ? octet.slice(1, -1).split(";") : [octet];
    return items.map((item): [number, number] | null => {
      const r = /^(\d{1,3})(?:\.\.(\d{1,3}))?$/.exec(item);
      if (!r) return null;
      const low = Number(r[1]);
      const high = Number(r[2] ?? r[1]);
      return low <= high && high <= 255 ? [low, high] : null;
    });
  });
  return ranges.some((items) => items.some((range) => range === null)) ? null : ranges as [number, number][][];
}
