-- command-limit and connection-limit shared the tag LIMIT; each now has its own
-- (COMMAND-LIMIT, CONNECTION-LIMIT), so rows written before read as the log and metrics do now.
UPDATE events SET event = 'COMMAND-LIMIT' WHERE event = 'LIMIT' AND check_id = 'command-limit';
UPDATE events SET event = 'CONNECTION-LIMIT' WHERE event = 'LIMIT' AND check_id = 'connection-limit';
UPDATE list_changes SET reason = 'COMMAND-LIMIT' WHERE reason = 'LIMIT' AND check_id = 'command-limit';
UPDATE list_changes SET reason = 'CONNECTION-LIMIT' WHERE reason = 'LIMIT' AND check_id = 'connection-limit';
