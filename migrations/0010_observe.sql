-- What enforcing a check that is only observed would cost (src/store/observed-checks.ts): the
-- hits of checks in `ignore` or `observe`, and what their clients did next, are read through
-- these indexes. Each is partial, so it holds only the rows it is about (most events are in
-- none) and a question costs index probes per client, not a scan of the events table.
CREATE INDEX IF NOT EXISTS events_observed ON events (check_id, at) WHERE action IN ('ignore', 'observe');
CREATE INDEX IF NOT EXISTS events_tempfailed ON events (client_ip, at) WHERE json_extract(evidence, '$.tempfails') > 0;
CREATE INDEX IF NOT EXISTS events_delivered ON events (client_ip, at) WHERE json_extract(evidence, '$.messages') > 0;
CREATE INDEX IF NOT EXISTS events_passed ON events (client_ip, at) WHERE event = 'PASS NEW';
CREATE INDEX IF NOT EXISTS events_convicted ON events (client_ip, at) WHERE action = 'ban' OR check_id = 'dnsbl';
CREATE INDEX IF NOT EXISTS events_dnswl ON events (client_ip, at) WHERE json_extract(evidence, '$.dnsbl_score') < 0;
