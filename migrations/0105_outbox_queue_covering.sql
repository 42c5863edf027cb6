-- The outbox worker reads the pending queue (id, lanes, next attempt, whether a card
-- may be merged) at every wake, and the gauges count pending and failed messages. With
-- only `id` in `outbox_pending_in_order` each pending row was read from the table —
-- past its payload, which is in overflow pages — and the counts scanned every row ever
-- queued: in a rush of paced cards, most of the reader's time. Both now read only
-- these partial indexes (`status` is in them so that SQLite sees they cover the query).
DROP INDEX outbox_pending_in_order;
CREATE INDEX outbox_pending_in_order ON outbox (id, lanes, next_attempt_at, digest, status)
    WHERE status = 'pending';
CREATE INDEX outbox_failed ON outbox (status) WHERE status = 'failed';
