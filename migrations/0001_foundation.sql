-- Foundation: inbound deduplication, the outbound outbox, the append-only event log.
-- All *_at columns are Unix milliseconds (UTC). Applied migrations are never edited.

-- One row per callback WeCom delivered (retries share the key). The stored answer is
-- what a retry gets back.
CREATE TABLE inbox (
    dedup_key    TEXT PRIMARY KEY,
    from_user    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    -- Passive reply: 'text' or 'update_button' with its content; NULL = empty 200.
    reply_kind   TEXT CHECK (reply_kind IN ('text', 'update_button')),
    reply        TEXT
) STRICT;

-- Everything the bot says goes through here and is delivered by the outbox worker.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    created_at      INTEGER NOT NULL,
    -- WeCom API path under /cgi-bin/, e.g. 'message/send', 'appchat/send', 'webhook/send'.
    api             TEXT NOT NULL,
    -- Webhook key for 'webhook/send'; NULL otherwise.
    target          TEXT,
    payload         TEXT NOT NULL,
    -- What the message is about (e.g. 'card:42'), so later steps can find its response.
    ref             TEXT,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    delivered_at    INTEGER,
    response        TEXT
) STRICT;

CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_ref ON outbox (ref) WHERE ref IS NOT NULL;

-- Every state change, for audit. Never updated, never deleted.
CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    action    TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    reason    TEXT,
    data      TEXT
) STRICT;

CREATE INDEX events_entity ON events (entity, entity_id, id);

CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;

CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;
