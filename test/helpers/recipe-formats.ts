/**
 * Readers for the subsets of TOML, YAML, Containerfile and systemd syntax that deploy/ is
 * written in, for test/deploy/recipes.test.ts. A full parser from npm would be a dependency for
 * four small files; these throw on any line outside their subset, so a recipe edited beyond it
 * fails its test loudly instead of being half read.
 */

export type Value = string | number | boolean | null | Value[] | { [key: string]: Value };
export type Table = { [key: string]: Value };

/** The characters of `text` outside double and single quotes, with their positions. */
function* unquoted(text: string): Generator<[number, string]> {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else yield [i, c];
  }
}

/** Strips a `#` comment that is not inside quotes. */
function uncomment(line: string): string {
  for (const [i, c] of unquoted(line)) if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  return line;
}

/** Splits `a, "b, c", d` at the commas outside quotes and brackets. */
function splitList(text: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (const [i, c] of unquoted(text)) {
    if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) {
      items.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = text.slice(start).trim();
  return last === "" ? items : [...items, last];
}

function tomlValue(text: string, where: string): Value {
  if (/^"([^"\\]|\\.)*"$/.test(text)) return JSON.parse(text) as string;
  if (/^-?\d+$/.test(text)) return Number(text);
  if (text === "true" || text === "false") return text === "true";
  if (text.startsWith("[") && text.endsWith("]")) return splitList(text.slice(1, -1)).map((item) => tomlValue(item, where));
  if (text.startsWith("{") && text.endsWith("}")) {
    return Object.fromEntries(splitList(text.slice(1, -1)).map((pair) => tomlPair(pair, where)));
  }
  throw new Error(
    `${where}: ${
      JSON.stringify(text)
    } is outside the TOML subset read here (strings, integers, booleans, one-line arrays and inline tables)`,
  );
}

function tomlPair(text: string, where: string): [string, Value] {
  const match = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(text.trim());
  if (!match) throw new Error(`${where}: ${JSON.stringify(text)} is not a key = value pair`);
  return [match[1], tomlValue(match[2].trim(), where)];
}

/** TOML: `[a.b]` and `[[a.b]]` headers, bare keys, one-line values. */
export function parseToml(text: string, name: string): Table {
  const root: Table = {};
  let current: Table = root;
  // A header names a path from the root; within an array of tables it is the last element's.
  const descend = (path: string[]): Table =>
    path.reduce<Table>((table, key) => {
      const next = table[key] ?? (table[key] = {});
      if (Array.isArray(next)) return next.at(-1) as Table;
      return next as Table;
    }, root);
  text.split("\n").forEach((raw, index) => {
    const where = `${name}:${index + 1}`;
    const line = uncomment(raw).trim();
    if (line === "") return;
    const array = /^\[\[([A-Za-z0-9_.-]+)\]\]$/.exec(line);
    const table = /^\[([A-Za-z0-9_.-]+)\]$/.exec(line);
    if (array) {
      const path = array[1].split(".");
      const parent = descend(path.slice(0, -1));
      const list = (parent[path.at(-1)!] ??= []) as Value[];
      if (!Array.isArray(list)) throw new Error(`${where}: [[${array[1]}]] after [${array[1]}]`);
      current = {};
      list.push(current);
    } else if (table) current = descend(table[1].split("."));
    else {
      const [key, value] = tomlPair(line, where);
      if (key in current) throw new Error(`${where}: ${key} set twice`);
      current[key] = value;
    }
  });
  return root;
}

function yamlScalar(text: string, where: string): Value {
  if (text.startsWith("[") && text.endsWith("]")) return splitList(text.slice(1, -1)).map((item) => yamlScalar(item, where));
  if (/^"([^"\\]|\\.)*"$/.test(text)) return JSON.parse(text) as string;
  if (/^'[^']*'$/.test(text)) return text.slice(1, -1);
  if (/^[{&*!|>]/.test(text)) {
    throw new Error(
      `${where}: ${JSON.stringify(text)} is outside the YAML subset read here (block maps and lists, plain and quoted scalars, flow lists)`,
    );
  }
  return text;
}

/** YAML: block maps and lists by indentation, scalars kept as strings. */
export function parseYaml(text: string, name: string): Value {
  const lines = text.split("\n").map((raw, index) => ({ where: `${name}:${index + 1}`, text: uncomment(raw).trimEnd() }))
    .filter((line) => line.text.trim() !== "")
    .map((line) => ({ ...line, indent: line.text.length - line.text.trimStart().length, body: line.text.trim() }));
  let at = 0;
  const block = (indent: number): Value => {
    if (lines[at].body.startsWith("- ")) {
      const list: Value[] = [];
      while (at < lines.length && lines[at].indent === indent && lines[at].body.startsWith("- ")) {
        list.push(yamlScalar(lines[at].body.slice(2).trim(), lines[at].where));
        at++;
      }
      return list;
    }
    const map: Table = {};
    while (at < lines.length && lines[at].indent === indent) {
      const { body, where } = lines[at];
      const match = /^([A-Za-z0-9_.-]+):(?:\s+(.*))?$/.exec(body);
      if (!match) throw new Error(`${where}: ${JSON.stringify(body)} is not a key: value line`);
      if (match[1] in map) throw new Error(`${where}: ${match[1]} set twice`);
      at++;
      if (match[2] !== undefined) map[match[1]] = yamlScalar(match[2].trim(), where);
      else if (at < lines.length && lines[at].indent > indent) map[match[1]] = block(lines[at].indent);
      else map[match[1]] = null;
    }
    if (at < lines.length && lines[at].indent > indent) {
      throw new Error(`${lines[at].where}: indented deeper than the line before it allows`);
    }
    return map;
  };
  const value = block(0);
  if (at < lines.length) throw new Error(`${lines[at].where}: unexpected indentation`);
  return value;
}

export interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

/** A Containerfile's instructions, continuation lines joined, comments dropped. */
export function parseContainerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split("\n").forEach((raw, index) => {
    if (pending === undefined && (raw.trim() === "" || raw.trimStart().startsWith("#"))) return;
    const continued = raw.trimEnd().endsWith("\\");
    const piece = continued ? raw.trimEnd().slice(0, -1) : raw;
    pending = pending ? { ...pending, text: `${pending.text} ${piece.trim()}` } : { text: piece.trim(), line: index + 1 };
    if (continued) return;
    const match = /^([A-Za-z]+)\s+(.*)$/.exec(pending.text);
    if (!match) throw new Error(`Containerfile:${pending.line}: ${JSON.stringify(pending.text)} is not an instruction`);
    instructions.push({ keyword: match[1].toUpperCase(), args: match[2].trim(), line: pending.line });
    pending = undefined;
  });
  return instructions;
}

/** `ENV A=1 B="2"` (several pairs, optional quotes) as a record. */
export function envPairs(args: string): Record<string, string> {
  return Object.fromEntries(
    [...args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)].map((
      [, key, value],
    ) => [key, value.startsWith('"') ? JSON.parse(value) : value]),
  );
}

/** A systemd unit: each section's settings, a key set twice keeping every value in order. */
export function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const sections: Record<string, Record<string, string[]>> = {};
  let section: Record<string, string[]> | undefined;
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) return void (section = sections[header[1]] = {});
    const pair = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!pair || !section) throw new Error(`mxscreen.service:${index + 1}: ${JSON.stringify(line)} is not a Key=value line in a section`);
    (section[pair[1]] ??= []).push(pair[2]);
  });
  return sections;
}

/** An EnvironmentFile: `KEY=value` lines; with `commented`, the `# KEY=value` examples too. */
export function parseEnvFile(text: string, commented: boolean): Record<string, string> {
  const pattern = commented ? /^#?\s*([A-Z][A-Z0-9_]*)=(.*)$/ : /^([A-Z][A-Z0-9_]*)=(.*)$/;
  return Object.fromEntries(text.split("\n").map((line) => pattern.exec(line.trim())).filter((m) => m !== null).map((m) => [m[1], m[2]]));
}
