-- Greylisting triplets shared by every node: (client network, sender, recipient). A triplet
-- first seen is deferred; a retry after the delay and before expires_at passes it, and a
-- passed triplet is remembered until expires_at, refreshed by each use.
CREATE TABLE IF NOT EXISTS greylist (
  triplet TEXT PRIMARY KEY,
  first_seen INTEGER NOT NULL,
  passed_at INTEGER,
  expires_at INTEGER NOT NULL,
  node TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS greylist_by_expiry ON greylist (expires_at);
