-- Team changes while a contest is open (调队, 退出PK, 移出): who was in which team when.
-- A member's record scores for the team they were in when it was reported; a member
-- who left keeps the points of their stint with their team but is no longer a member
-- (no stake, no payout). `contest_members` keeps the current membership; `left_at` marks
-- who left (they cannot join the contest again).
CREATE TABLE contest_stints (
    contest_id TEXT NOT NULL REFERENCES contests (id),
    userid     TEXT NOT NULL,
    team       TEXT NOT NULL,
    from_at    INTEGER NOT NULL,
    -- NULL while they are in it.
    to_at      INTEGER,
    PRIMARY KEY (contest_id, userid, from_at)
) STRICT;
CREATE INDEX contest_stints_by_user ON contest_stints (userid, contest_id);
INSERT INTO contest_stints (contest_id, userid, team, from_at)
    SELECT contest_id, userid, team, joined_at FROM contest_members;

ALTER TABLE contest_members ADD COLUMN left_at INTEGER;

-- Scores are kept per member and team (a member who moved scored for both).
CREATE TABLE contest_scores_new (
    contest_id TEXT NOT NULL,
    userid     TEXT NOT NULL,
    team       TEXT NOT NULL,
    points     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (contest_id, userid, team)
) STRICT;
INSERT INTO contest_scores_new (contest_id, userid, team, points)
    SELECT s.contest_id, s.userid, m.team, s.points
    FROM contest_scores s JOIN contest_members m ON m.contest_id = s.contest_id AND m.userid = s.userid;
DROP TABLE contest_scores;
ALTER TABLE contest_scores_new RENAME TO contest_scores;
