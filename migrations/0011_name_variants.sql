-- The look-alike test's index: every claimed core name (clients and channels by
-- subject, placed people by record) with each of its one-character deletions. Two
-- names one edit apart (a character inserted, removed or replaced) share an entry, so
-- near misses are found by index instead of by comparing every live claim. Filled at
-- startup for what existed before this table, and on every new claim after.
CREATE TABLE name_variants (
    -- 'client', 'channel' (owner: a subject) or 'person' (owner: a placement record).
    space   TEXT NOT NULL CHECK (space IN ('client', 'channel', 'person')),
    variant TEXT NOT NULL,
    owner   INTEGER NOT NULL
) STRICT;
CREATE INDEX name_variants_by_variant ON name_variants (space, variant);
