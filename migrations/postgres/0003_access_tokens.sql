-- SQLite's migration 0110: WeCom's access token, shared by every replica.
CREATE TABLE access_tokens (
    key             TEXT PRIMARY KEY,
    value           TEXT,
    refresh_at      BIGINT NOT NULL DEFAULT 0,
    fetched_at      BIGINT,
    refused_until   BIGINT NOT NULL DEFAULT 0,
    refused_code    BIGINT,
    refused_message TEXT
);
