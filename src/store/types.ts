/** Rows as Kysely sees them, and the entries the in-memory index holds. */
import type { Generated, Selectable } from "kysely";

export type ListKind = "ban" | "pass" | "allow";

export interface ListChangesTable {
  seq: Generated<number>;
  kind: ListKind;
  prefix: string;
  op: "set" | "remove";
  created_at: number;
  expires_at: number | null;
  node: string;
  check_id: string | null;
  reason: string | null;
  evidence: string | null;
  op_id: string | null;
}

export interface EventsTable {
  id: Generated<number>;
  at: number;
  node: string;
  client_ip: string;
  client_port: number;
  event: string;
  check_id: string | null;
  action: string;
  evidence: string;
  op_id: string | null;
}

export interface NodesTable {
  name: string;
  runtime: string;
  listen: string;
  started_at: number;
  last_seen: number;
  admin_url: string | null;
  /** The highest list_changes seq this node has applied. */
  read_seq: Generated<number>;
}

/** The change in force per kind and prefix (see migrations/0006_state.sql). */
export interface ListsTable {
  kind: ListKind;
  prefix: string;
  op: "set" | "remove";
  created_at: number;
  seq: number;
  expires_at: number | null;
  node: string;
  check_id: string | null;
  reason: string | null;
  evidence: string | null;
}

export interface LeasesTable {
  name: string;
  holder: string;
  until: number;
}

export interface StoreMarksTable {
  name: string;
  value: number;
  at: number;
}

export interface GreylistTable {
  triplet: string;
  first_seen: number;
  passed_at: number | null;
  expires_at: number;
  node: string;
  seq: Generated<number>;
}

/** One node's count for one slot of a fleet-wide windowed counter. */
export interface CountersTable {
  name: string;
  key: string;
  slot: number;
  node: string;
  count: number;
  seq: number;
}

export type ListChangeRow = Selectable<ListChangesTable>;
export type ListRow = Selectable<ListsTable>;
export type GreylistRow = Selectable<GreylistTable>;
export type EventRow = Selectable<EventsTable>;

export interface Database {
  list_changes: ListChangesTable;
  events: EventsTable;
  nodes: NodesTable;
  greylist: GreylistTable;
  counters: CountersTable;
  lists: ListsTable;
  leases: LeasesTable;
  store_marks: StoreMarksTable;
  schema_migrations: { name: string; applied_at: number };
}

export interface ListEntry {
  readonly kind: ListKind;
  readonly prefix: string;
  readonly createdAt: number;
  /** null: never expires. */
  readonly expiresAt: number | null;
  readonly node: string;
  readonly check: string | null;
  /**
   * null: none given, or one of more distinct reasons than a node keeps in memory (explain and
   * the API read it from the database).
   */
  readonly reason: string | null;
}

/** What the lists say about a client when it connects. */
export type Standing =
  | { readonly kind: "allowed"; readonly source: string }
  | { readonly kind: "banned"; readonly entry: ListEntry }
  | { readonly kind: "passed"; readonly entry: ListEntry }
  /** `protocolPass`: the client's greet test must be passed again, but its deep protocol tests' pass holds. */
  | { readonly kind: "new"; readonly protocolPass?: ListEntry };
