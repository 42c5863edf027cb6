-- The daily leaderboard's count kept per contest and day: how many of the contest's
-- counting records were confirmed that day (`store::contests::confirmed_between`), the
-- same number as its exact query,
--
--   COUNT(*) FROM records r JOIN contest_stints st ON st.userid = r.reporter
--            JOIN contests c ON c.id = st.contest_id
--   WHERE st.contest_id = <contest> AND r.state = 'confirmed' AND r.counted = 1
--     AND r.decided_at in the day AND <r in st and in c's kinds and window>,
--
-- which reads each of the day's records (~1 µs a record; ~47 ms for a busy day of a
-- 1,000,000-record database). The count is a sum over (record, stint) pairs, so the
-- triggers below move it, in the changing transaction (also for another process's
-- writes), by what a changed record or stint takes out and brings in.
--
-- A row is exact whenever it exists; a missing row is unknown, never zero, and the
-- reader then runs the exact query. Rows are made by the records' triggers: before a
-- record starts counting on a day without a row, the row is created with the exact
-- count of that day as it is (the first record of a new day: zero), which the AFTER
-- trigger then moves as it moves any row. (A BEFORE trigger runs only when a row is
-- missing, so the insert, whose SELECT reads the table it writes and is materialised
-- first, costs nothing on the common path; and BEFORE always runs before AFTER, so
-- the record is never counted twice.) A change to a contest's kinds, start or cut-off
-- deletes its rows (the next record to count recreates the day's); a stint's change
-- moves the rows there are.
--
-- `day_start` is the day's midnight in Asia/Shanghai (UTC+8, no daylight saving),
-- Unix ms: `t - (t + 28800000) % 86400000`.
--
-- A later migration that rebuilds `records`, `contest_stints` or `contests` must create
-- these triggers again; one that drops or renames `records_decided` must recreate the
-- BEFORE triggers, which name it (`INDEXED BY`: without it SQLite may walk every
-- confirmed record by `records_state`), or every change to a record fails.
CREATE TABLE contest_day_counts (
    contest_id TEXT NOT NULL,
    day_start  INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (contest_id, day_start)
) STRICT, WITHOUT ROWID;

-- A record's pairs: one for each stint of its reporter that it scores in, for the
-- day it was decided, while it is confirmed and counted.

CREATE TRIGGER contest_day_counts_record_insert_day BEFORE INSERT ON records
WHEN new.state = 'confirmed' AND new.counted = 1 AND new.decided_at IS NOT NULL
  AND EXISTS (
    SELECT 1 FROM contest_stints st JOIN contests c ON c.id = st.contest_id
    WHERE st.userid = new.reporter
      AND instr(',' || c.kinds || ',', ',' || new.kind || ',') > 0
      AND new.occurred_at >= MAX(c.start_at, st.from_at)
      AND new.occurred_at < MIN(c.cutoff_at, COALESCE(st.to_at, c.cutoff_at))
      AND NOT EXISTS (SELECT 1 FROM contest_day_counts d WHERE d.contest_id = st.contest_id
          AND d.day_start = new.decided_at - (new.decided_at + 28800000) % 86400000))
BEGIN
    INSERT INTO contest_day_counts (contest_id, day_start, n)
    SELECT st.contest_id, new.decided_at - (new.decided_at + 28800000) % 86400000, (
        SELECT COUNT(*) FROM records r INDEXED BY records_decided
        CROSS JOIN contest_stints st2 ON st2.userid = r.reporter AND st2.contest_id = st.contest_id
        JOIN contests c2 ON c2.id = st2.contest_id
        WHERE r.state = 'confirmed' AND r.counted = 1
          AND r.decided_at >= new.decided_at - (new.decided_at + 28800000) % 86400000
          AND r.decided_at < new.decided_at - (new.decided_at + 28800000) % 86400000 + 86400000
          AND instr(',' || c2.kinds || ',', ',' || r.kind || ',') > 0
          AND r.occurred_at >= MAX(c2.start_at, st2.from_at)
          AND r.occurred_at < MIN(c2.cutoff_at, COALESCE(st2.to_at, c2.cutoff_at)))
    FROM contest_stints st JOIN contests c ON c.id = st.contest_id
    WHERE st.userid = new.reporter
      AND instr(',' || c.kinds || ',', ',' || new.kind || ',') > 0
      AND new.occurred_at >= MAX(c.start_at, st.from_at)
      AND new.occurred_at < MIN(c.cutoff_at, COALESCE(st.to_at, c.cutoff_at))
      AND NOT EXISTS (SELECT 1 FROM contest_day_counts d WHERE d.contest_id = st.contest_id
          AND d.day_start = new.decided_at - (new.decided_at + 28800000) % 86400000)
    ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER contest_day_counts_record_insert AFTER INSERT ON records
WHEN new.state = 'confirmed' AND new.counted = 1 AND new.decided_at IS NOT NULL
BEGIN
    UPDATE contest_day_counts SET n = n + (
        SELECT COUNT(*) FROM contest_stints st JOIN contests c ON c.id = st.contest_id
        WHERE st.contest_id = contest_day_counts.contest_id AND st.userid = new.reporter
          AND instr(',' || c.kinds || ',', ',' || new.kind || ',') > 0
          AND new.occurred_at >= MAX(c.start_at, st.from_at)
          AND new.occurred_at < MIN(c.cutoff_at, COALESCE(st.to_at, c.cutoff_at)))
    WHERE contest_day_counts.day_start = new.decided_at - (new.decided_at + 28800000) % 86400000
      AND contest_day_counts.contest_id IN (SELECT contest_id FROM contest_stints WHERE userid = new.reporter);
END;

CREATE TRIGGER contest_day_counts_record_update_day BEFORE UPDATE OF state, counted, decided_at, reporter, kind, occurred_at ON records
WHEN new.state = 'confirmed' AND new.counted = 1 AND new.decided_at IS NOT NULL
  AND EXISTS (
    SELECT 1 FROM contest_stints st JOIN contests c ON c.id = st.contest_id
    WHERE st.userid = new.reporter
      AND instr(',' || c.kinds || ',', ',' || new.kind || ',') > 0
      AND new.occurred_at >= MAX(c.start_at, st.from_at)
      AND new.occurred_at < MIN(c.cutoff_at, COALESCE(st.to_at, c.cutoff_at))
      AND NOT EXISTS (SELECT 1 FROM contest_day_counts d WHERE d.contest_id = st.contest_id
          AND d.day_start = new.decided_at - (new.decided_at + 28800000) % 86400000))
BEGIN
    INSERT INTO contest_day_counts (contest_id, day_start, n)
    SELECT st.contest_id, new.decided_at - (new.decided_at + 28800000) % 86400000, (
        SELECT COUNT(*) FROM records r INDEXED BY records_decided
        CROSS JOIN contest_stints st2 ON st2.userid = r.reporter AND st2.contest_id = st.contest_id
        JOIN contests c2 ON c2.id = st2.contest_id
        WHERE r.state = 'confirmed' AND r.counted = 1
          AND r.decided_at >= new.decided_at - (new.decided_at + 28800000) % 86400000
          AND r.decided_at < new.decided_at - (new.decided_at + 28800000) % 86400000 + 86400000
          AND instr(',' || c2.kinds || ',', ',' || r.kind || ',') > 0
          AND r.occurred_at >= MAX(c2.start_at, st2.from_at)
          AND r.occurred_at < MIN(c2.cutoff_at, COALESCE(st2.to_at, c2.cutoff_at)))
    FROM contest_stints st JOIN contests c ON c.id = st.contest_id
    WHERE st.userid = new.reporter
      AND instr(',' || c.kinds || ',', ',' || new.kind || ',') > 0
      AND new.occurred_at >= MAX(c.start_at, st.from_at)
      AND new.occurred_at < MIN(c.cutoff_at, COALESCE(st.to_at, c.cutoff_at))
      AND NOT EXISTS (SELECT 1 FROM contest_day_counts d WHERE d.contest_id = st.contest_id
          AND d.day_start = new.decided_at - (new.decided_at + 28800000) % 86400000)
    ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER contest_day_counts_record_update AFTER UPDATE OF state, counted, decided_at, reporter, kind, occurred_at ON records
WHEN (old.state = 'confirmed' AND old.counted = 1 AND old.decided_at IS NOT NULL)
  OR (new.state = 'confirmed' AND new.counted = 1 AND new.decided_at IS NOT NULL)
BEGIN
    UPDATE contest_day_counts SET n = n - (
        SELECT COUNT(*) FROM contest_stints st JOIN contests c ON c.id = st.contest_id
        WHERE st.contest_id = contest_day_counts.contest_id AND st.userid = old.reporter
          AND instr(',' || c.kinds || ',', ',' || old.kind || ',') > 0
          AND old.occurred_at >= MAX(c.start_at, st.from_at)
          AND old.occurred_at < MIN(c.cutoff_at, COALESCE(st.to_at, c.cutoff_at)))
    WHERE old.state = 'confirmed' AND old.counted = 1 AND old.decided_at IS NOT NULL
      AND contest_day_counts.day_start = old.decided_at - (old.decided_at + 28800000) % 86400000
      AND contest_day_counts.contest_id IN (SELECT contest_id FROM contest_stints WHERE userid = old.reporter);
    UPDATE contest_day_counts SET n = n + (
        SELECT COUNT(*) FROM contest_stints st JOIN contests c ON c.id = st.contest_id
        WHERE st.contest_id = contest_day_counts.contest_id AND st.userid = new.reporter
          AND instr(',' || c.kinds || ',', ',' || new.kind || ',') > 0
          AND new.occurred_at >= MAX(c.start_at, st.from_at)
          AND new.occurred_at < MIN(c.cutoff_at, COALESCE(st.to_at, c.cutoff_at)))
    WHERE new.state = 'confirmed' AND new.counted = 1 AND new.decided_at IS NOT NULL
      AND contest_day_counts.day_start = new.decided_at - (new.decided_at + 28800000) % 86400000
      AND contest_day_counts.contest_id IN (SELECT contest_id FROM contest_stints WHERE userid = new.reporter);
END;

CREATE TRIGGER contest_day_counts_record_delete AFTER DELETE ON records
WHEN old.state = 'confirmed' AND old.counted = 1 AND old.decided_at IS NOT NULL
BEGIN
    UPDATE contest_day_counts SET n = n - (
        SELECT COUNT(*) FROM contest_stints st JOIN contests c ON c.id = st.contest_id
        WHERE st.contest_id = contest_day_counts.contest_id AND st.userid = old.reporter
          AND instr(',' || c.kinds || ',', ',' || old.kind || ',') > 0
          AND old.occurred_at >= MAX(c.start_at, st.from_at)
          AND old.occurred_at < MIN(c.cutoff_at, COALESCE(st.to_at, c.cutoff_at)))
    WHERE contest_day_counts.day_start = old.decided_at - (old.decided_at + 28800000) % 86400000
      AND contest_day_counts.contest_id IN (SELECT contest_id FROM contest_stints WHERE userid = old.reporter);
END;

-- A stint's pairs: its member's confirmed, counted records of the contest's kinds in
-- the stint and the contest's window, by the day they were decided (rows there are).

CREATE TRIGGER contest_day_counts_stint_insert AFTER INSERT ON contest_stints
BEGIN
    UPDATE contest_day_counts SET n = n + x.k
    FROM (SELECT r.decided_at - (r.decided_at + 28800000) % 86400000 AS day_start, COUNT(*) AS k
          FROM records r JOIN contests c ON c.id = new.contest_id
          WHERE r.reporter = new.userid AND r.counted = 1 AND r.state = 'confirmed'
            AND r.decided_at IS NOT NULL
            AND instr(',' || c.kinds || ',', ',' || r.kind || ',') > 0
            AND r.occurred_at >= MAX(c.start_at, new.from_at)
            AND r.occurred_at < MIN(c.cutoff_at, COALESCE(new.to_at, c.cutoff_at))
          GROUP BY 1) AS x
    WHERE contest_day_counts.contest_id = new.contest_id AND contest_day_counts.day_start = x.day_start;
END;

CREATE TRIGGER contest_day_counts_stint_update
AFTER UPDATE OF contest_id, userid, from_at, to_at ON contest_stints
BEGIN
    UPDATE contest_day_counts SET n = n - x.k
    FROM (SELECT r.decided_at - (r.decided_at + 28800000) % 86400000 AS day_start, COUNT(*) AS k
          FROM records r JOIN contests c ON c.id = old.contest_id
          WHERE r.reporter = old.userid AND r.counted = 1 AND r.state = 'confirmed'
            AND r.decided_at IS NOT NULL
            AND instr(',' || c.kinds || ',', ',' || r.kind || ',') > 0
            AND r.occurred_at >= MAX(c.start_at, old.from_at)
            AND r.occurred_at < MIN(c.cutoff_at, COALESCE(old.to_at, c.cutoff_at))
          GROUP BY 1) AS x
    WHERE contest_day_counts.contest_id = old.contest_id AND contest_day_counts.day_start = x.day_start;
    UPDATE contest_day_counts SET n = n + x.k
    FROM (SELECT r.decided_at - (r.decided_at + 28800000) % 86400000 AS day_start, COUNT(*) AS k
          FROM records r JOIN contests c ON c.id = new.contest_id
          WHERE r.reporter = new.userid AND r.counted = 1 AND r.state = 'confirmed'
            AND r.decided_at IS NOT NULL
            AND instr(',' || c.kinds || ',', ',' || r.kind || ',') > 0
            AND r.occurred_at >= MAX(c.start_at, new.from_at)
            AND r.occurred_at < MIN(c.cutoff_at, COALESCE(new.to_at, c.cutoff_at))
          GROUP BY 1) AS x
    WHERE contest_day_counts.contest_id = new.contest_id AND contest_day_counts.day_start = x.day_start;
END;

CREATE TRIGGER contest_day_counts_stint_delete AFTER DELETE ON contest_stints
BEGIN
    UPDATE contest_day_counts SET n = n - x.k
    FROM (SELECT r.decided_at - (r.decided_at + 28800000) % 86400000 AS day_start, COUNT(*) AS k
          FROM records r JOIN contests c ON c.id = old.contest_id
          WHERE r.reporter = old.userid AND r.counted = 1 AND r.state = 'confirmed'
            AND r.decided_at IS NOT NULL
            AND instr(',' || c.kinds || ',', ',' || r.kind || ',') > 0
            AND r.occurred_at >= MAX(c.start_at, old.from_at)
            AND r.occurred_at < MIN(c.cutoff_at, COALESCE(old.to_at, c.cutoff_at))
          GROUP BY 1) AS x
    WHERE contest_day_counts.contest_id = old.contest_id AND contest_day_counts.day_start = x.day_start;
END;

-- A contest's kinds, start or cut-off change every pair of it: its rows are dropped.

CREATE TRIGGER contest_day_counts_contest_update
AFTER UPDATE OF id, kinds, start_at, cutoff_at ON contests
-- A reload writes every contest's row again: only a change drops the counts.
WHEN old.id IS NOT new.id OR old.kinds IS NOT new.kinds OR old.start_at IS NOT new.start_at
  OR old.cutoff_at IS NOT new.cutoff_at
BEGIN
    DELETE FROM contest_day_counts WHERE contest_id IN (old.id, new.id);
END;

CREATE TRIGGER contest_day_counts_contest_delete AFTER DELETE ON contests
BEGIN
    DELETE FROM contest_day_counts WHERE contest_id = old.id;
END;
