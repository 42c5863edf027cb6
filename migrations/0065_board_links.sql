-- The read-only link of each contest's TV board (/board/{contest}?key=…): a random
-- token, replaced as a whole when an admin rotates it (the old one stops working).
CREATE TABLE board_links (
    contest_id TEXT PRIMARY KEY REFERENCES contests (id),
    token      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
