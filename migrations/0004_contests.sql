-- PK contests: members and their stakes, broadcast snapshots, and final results.

CREATE TABLE contests (
    id            TEXT PRIMARY KEY,
    state         TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'frozen', 'final')),
    -- What is scored, as configured (kept with the contest; a change rebuilds scores
    -- until the contest is final).
    kinds         TEXT NOT NULL,
    start_at      INTEGER NOT NULL,
    cutoff_at     INTEGER NOT NULL,
    frozen_at     INTEGER,
    finalised_at  INTEGER,
    finalised_by  TEXT,
    pool_fen      INTEGER,
    -- The final ranking as finalised (JSON); never changed afterwards.
    result        TEXT
) STRICT;

-- A person is in at most one team per contest.
CREATE TABLE contest_members (
    contest_id TEXT NOT NULL REFERENCES contests (id),
    userid     TEXT NOT NULL REFERENCES people (userid),
    team       TEXT NOT NULL,
    stake_fen  INTEGER NOT NULL CHECK (stake_fen >= 0),
    -- Records count from max(contest start, joined_at).
    joined_at  INTEGER NOT NULL,
    -- 'config', 'department', 'join' (加入PK) or 'assign' (分配).
    source     TEXT NOT NULL,
    PRIMARY KEY (contest_id, userid)
) STRICT;

-- Standings as broadcast or frozen, for "change since the previous broadcast".
CREATE TABLE contest_snapshots (
    id         INTEGER PRIMARY KEY,
    contest_id TEXT NOT NULL REFERENCES contests (id),
    kind       TEXT NOT NULL CHECK (kind IN ('broadcast', 'cutoff')),
    at         INTEGER NOT NULL,
    standings  TEXT NOT NULL
) STRICT;

CREATE INDEX contest_snapshots_latest ON contest_snapshots (contest_id, kind, id);

-- What each person receives from a finalised contest.
CREATE TABLE contest_payouts (
    contest_id TEXT NOT NULL REFERENCES contests (id),
    userid     TEXT NOT NULL,
    team       TEXT NOT NULL,
    rank       INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen >= 0),
    PRIMARY KEY (contest_id, userid)
) STRICT;

-- Each member's points in a contest, kept up to date as records start or stop counting
-- (see `records.counted`), so standings never scan the records.
CREATE TABLE contest_scores (
    contest_id TEXT NOT NULL,
    userid     TEXT NOT NULL,
    points     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (contest_id, userid),
    FOREIGN KEY (contest_id, userid) REFERENCES contest_members (contest_id, userid)
) STRICT;

-- Whether a record counted when last looked at (a cache of `counting_records`); the
-- difference to now is what moves contest scores.
ALTER TABLE records ADD COLUMN counted INTEGER NOT NULL DEFAULT 0 CHECK (counted IN (0, 1));
UPDATE records SET counted = 1 WHERE id IN (SELECT id FROM counting_records);
CREATE INDEX records_counted ON records (reporter, occurred_at) WHERE counted = 1;
CREATE INDEX records_decided ON records (decided_at) WHERE state = 'confirmed';
