-- Pacing and digests (SPEC section 15). Each message records whom it reaches (`lanes`:
-- `u:USERID`, `chat:CHATID`, `robot:KEY`, '|'-separated), so the worker can keep every
-- recipient within WeCom's per-minute and per-hour limits (counted from the delivered
-- rows, which survive a restart) and deliver to each recipient in order. A record card
-- carries its `digest` line; when a member's cards would exceed the budget they are
-- merged into one digest message and marked 'merged'.
CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY,
    created_at      INTEGER NOT NULL,
    api             TEXT NOT NULL,
    target          TEXT,
    payload         TEXT NOT NULL,
    ref             TEXT,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed', 'merged')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    delivered_at    INTEGER,
    response        TEXT,
    lanes           TEXT NOT NULL DEFAULT '',
    -- JSON {"line": …, "hint": …} for a card that may be merged into a digest.
    digest          TEXT
) STRICT;

INSERT INTO outbox_new (id, created_at, api, target, payload, ref, status, attempts, next_attempt_at,
                        last_error, delivered_at, response, lanes)
SELECT id, created_at, api, target, payload, ref, status, attempts, next_attempt_at, last_error,
       delivered_at, response,
       CASE api
           WHEN 'webhook/send' THEN 'robot:' || COALESCE(target, '')
           WHEN 'appchat/send' THEN 'chat:' || COALESCE(json_extract(payload, '$.chatid'), '')
           WHEN 'message/update_template_card' THEN
               COALESCE((SELECT group_concat('u:' || value, '|') FROM json_each(payload, '$.userids')), '')
           ELSE COALESCE('u:' || replace(json_extract(payload, '$.touser'), '|', '|u:'), '')
       END
FROM outbox;

DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;

CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_ref ON outbox (ref) WHERE ref IS NOT NULL;
-- The worker walks pending messages in queue order; pacing reads the last hour's sends.
CREATE INDEX outbox_pending_in_order ON outbox (id) WHERE status = 'pending';
CREATE INDEX outbox_by_delivered_at ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;
