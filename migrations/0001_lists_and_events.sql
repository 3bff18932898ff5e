-- Bans, passes and allow entries as an append-only change log: every node loads the latest
-- row per (kind, prefix) at start and then follows rows with a higher seq, so a change made
-- anywhere (another node, the CLI, the API) reaches every node without a full reload.
CREATE TABLE IF NOT EXISTS list_changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('ban', 'pass', 'allow')),
  prefix TEXT NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('set', 'remove')),
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  node TEXT NOT NULL,
  check_id TEXT,
  reason TEXT,
  evidence TEXT
);
CREATE INDEX IF NOT EXISTS list_changes_by_prefix ON list_changes (kind, prefix, seq);

-- Every verdict about a client, with its evidence, for explain.
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  node TEXT NOT NULL,
  client_ip TEXT NOT NULL,
  client_port INTEGER NOT NULL,
  event TEXT NOT NULL,
  check_id TEXT,
  action TEXT NOT NULL,
  evidence TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_client ON events (client_ip, at);
