-- The web console's sign-in: the key its cookies are signed with (made once, so that
-- sessions survive a restart), the OAuth `state`s handed out (single use, short-lived)
-- and the sessions themselves (server-side, so that they can be revoked).

CREATE TABLE web_keys (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cookie_key BLOB NOT NULL CHECK (length(cookie_key) = 64),
    created_at INTEGER NOT NULL
);

CREATE TABLE web_login_states (
    state TEXT PRIMARY KEY,
    -- Where to go once signed in (a path under /ui/).
    next TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE web_sessions (
    id TEXT PRIMARY KEY,
    userid TEXT NOT NULL REFERENCES people (userid),
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Set when signed out or revoked; such a session is never accepted again.
    revoked_at INTEGER
);

CREATE INDEX web_sessions_by_user ON web_sessions (userid);
