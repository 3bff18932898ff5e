-- Every write carries the id it was queued under, so a write replayed from a node's local
-- queue after a crash or an outage is applied once.
ALTER TABLE list_changes ADD COLUMN op_id TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS list_changes_op_id ON list_changes (op_id);
ALTER TABLE events ADD COLUMN op_id TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS events_op_id ON events (op_id);
CREATE INDEX IF NOT EXISTS events_by_time ON events (at);

-- One row per node, refreshed by its heartbeat: the fleet as the dashboard shows it.
CREATE TABLE IF NOT EXISTS nodes (
  name TEXT PRIMARY KEY,
  runtime TEXT NOT NULL,
  listen TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL
);
