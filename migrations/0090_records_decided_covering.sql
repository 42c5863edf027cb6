-- The daily leaderboard counts the day's confirmed records of a contest through
-- `records_decided`. With only `decided_at` in it, each of the day's index entries was
-- checked against its record row (reporter, kind, occurred_at, counted), one random
-- page of the records table each: most of the job's time on a large database. The
-- index now carries those columns (and `state`, so SQLite sees it covers the query),
-- and the count reads no record row.
DROP INDEX records_decided;
CREATE INDEX records_decided ON records (decided_at, reporter, kind, occurred_at, counted, state)
    WHERE state = 'confirmed';
