-- The lists in force: one row per kind and prefix, the change that won (the latest by creation
-- time, then by seq), kept up to date by a trigger on every insert into list_changes, whoever
-- writes it (a node of any version, the CLI, the API). A node loads this at start, in time
-- proportional to the entries in force; list_changes is only followed, and trimmed. A removal
-- stays here as a row with op = 'remove' for a while, so an older change arriving late cannot
-- bring the entry back.
CREATE TABLE IF NOT EXISTS lists (
  kind TEXT NOT NULL CHECK (kind IN ('ban', 'pass', 'allow')),
  prefix TEXT NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('set', 'remove')),
  created_at INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  expires_at INTEGER,
  node TEXT NOT NULL,
  check_id TEXT,
  reason TEXT,
  evidence TEXT,
  PRIMARY KEY (kind, prefix)
);
CREATE INDEX IF NOT EXISTS lists_by_expiry ON lists (expires_at);
CREATE INDEX IF NOT EXISTS lists_by_prefix ON lists (prefix);

INSERT OR REPLACE INTO lists (kind, prefix, op, created_at, seq, expires_at, node, check_id, reason, evidence)
SELECT c.kind, c.prefix, c.op, c.created_at, c.seq, c.expires_at, c.node, c.check_id, c.reason, c.evidence FROM list_changes c
WHERE NOT EXISTS (SELECT 1 FROM list_changes n WHERE n.kind = c.kind AND n.prefix = c.prefix
  AND (n.created_at > c.created_at OR (n.created_at = c.created_at AND n.seq > c.seq)));

CREATE TRIGGER IF NOT EXISTS list_changes_in_force AFTER INSERT ON list_changes
WHEN NOT EXISTS (SELECT 1 FROM lists l WHERE l.kind = NEW.kind AND l.prefix = NEW.prefix
  AND (l.created_at > NEW.created_at OR (l.created_at = NEW.created_at AND l.seq > NEW.seq)))
BEGIN INSERT OR REPLACE INTO lists (kind, prefix, op, created_at, seq, expires_at, node, check_id, reason, evidence) VALUES (NEW.kind, NEW.prefix, NEW.op, NEW.created_at, NEW.seq, NEW.expires_at, NEW.node, NEW.check_id, NEW.reason, NEW.evidence); END;

-- How far each node has read list_changes: rows every live node has read are trimmed.
ALTER TABLE nodes ADD COLUMN read_seq INTEGER NOT NULL DEFAULT 0;

-- Housekeeping (sweeping, trimming, retention) is done by one node at a time: the holder of
-- the 'housekeeping' lease until it lapses.
CREATE TABLE IF NOT EXISTS leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  until INTEGER NOT NULL
);

-- Numbers the housekeeper writes for every node to show: table sizes (rows), and
-- list_changes_trimmed_below (a node that read less than that reloads from lists).
CREATE TABLE IF NOT EXISTS store_marks (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL,
  at INTEGER NOT NULL
);
