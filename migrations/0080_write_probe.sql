-- One row that /healthz writes to find out whether a disk that failed a write (full,
-- read-only) can be written again; written only while a failure is noted.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
) STRICT;
