-- WeCom's access token, shared by every process on the database (issue 17: replicas,
-- and `leadboard` commands beside the service). One row per app credential (`key`: the
-- corp id and a digest of the secret, so a new secret starts a new row). The token is
-- a credential valid for two hours, as readable here as the rest of the database;
-- a refused gettoken's cool-down is kept too, so no process asks during it.
CREATE TABLE access_tokens (
    key             TEXT PRIMARY KEY,
    value           TEXT,
    -- Unix ms: refreshed from then on (90 % of its lifetime), or at once when 0.
    refresh_at      INTEGER NOT NULL DEFAULT 0,
    fetched_at      INTEGER,
    refused_until   INTEGER NOT NULL DEFAULT 0,
    refused_code    INTEGER,
    refused_message TEXT
) STRICT;
