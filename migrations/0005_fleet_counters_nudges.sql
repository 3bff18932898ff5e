-- Where each node's admin API answers: a node that writes a ban nudges the others there, so
-- they read the change at once instead of at their next poll.
ALTER TABLE nodes ADD COLUMN admin_url TEXT;

-- Counters summed across the fleet (unknown recipients per network and per domain, and the
-- rates later checks count): each node writes its own total for each slot of a window, and
-- reads the others' rows newer than the last seq it saw. seq is given by the database on
-- every write (from seqs below, one writer at a time), so a late write replayed from a node's
-- queue is seen whatever the clocks say.
CREATE TABLE IF NOT EXISTS counters (
  name TEXT NOT NULL,
  key TEXT NOT NULL,
  slot INTEGER NOT NULL,
  node TEXT NOT NULL,
  count INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (name, key, slot, node)
);
CREATE INDEX IF NOT EXISTS counters_by_seq ON counters (seq);
CREATE INDEX IF NOT EXISTS counters_by_slot ON counters (slot);

-- Greylist triplets are followed into every node's memory the same way. The rows already there
-- get distinct seqs (their rowids), so a node reading them in pages by seq reads them all.
ALTER TABLE greylist ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE greylist SET seq = rowid;
CREATE INDEX IF NOT EXISTS greylist_by_seq ON greylist (seq);

-- The last seq given in each followed table. It only grows, unlike max(seq), which falls back
-- when retention deletes the newest row and would hand its seq out again to a row every
-- follower then skips.
CREATE TABLE IF NOT EXISTS seqs (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT OR IGNORE INTO seqs (name, value) SELECT 'greylist', coalesce(max(seq), 0) FROM greylist;
INSERT OR IGNORE INTO seqs (name, value) VALUES ('counters', 0);
