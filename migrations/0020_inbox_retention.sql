-- The inbox keeps callback keys for `server.inbox_retention_days`; the `inbox_prune`
-- job deletes older rows, oldest first, by this index.
CREATE INDEX inbox_by_received_at ON inbox (received_at);
