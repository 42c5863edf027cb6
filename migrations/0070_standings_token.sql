-- The standings token: a random number that changes with every change to what contest
-- standings are made of (scores, memberships and stakes, people's names), in the same
-- transaction as the change, by triggers (so also for changes made by another process,
-- such as `leadboard jobs run`). The service keeps standings in memory keyed by the
-- token they were read under: a cached copy is used only while the token is the one
-- the reading transaction sees, so it is never ahead of or behind the database. A
-- random token, unlike a counter, is never reused after a rollback, and two databases
-- never share one.
--
-- A later migration that rebuilds one of these tables must create its triggers again.
CREATE TABLE standings_token (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    token INTEGER NOT NULL
) STRICT;
INSERT INTO standings_token (id, token) VALUES (1, random());

CREATE TRIGGER standings_token_scores_insert AFTER INSERT ON contest_scores
BEGIN UPDATE standings_token SET token = random() WHERE id = 1; END;
CREATE TRIGGER standings_token_scores_update AFTER UPDATE ON contest_scores
BEGIN UPDATE standings_token SET token = random() WHERE id = 1; END;
CREATE TRIGGER standings_token_scores_delete AFTER DELETE ON contest_scores
BEGIN UPDATE standings_token SET token = random() WHERE id = 1; END;

CREATE TRIGGER standings_token_members_insert AFTER INSERT ON contest_members
BEGIN UPDATE standings_token SET token = random() WHERE id = 1; END;
CREATE TRIGGER standings_token_members_update AFTER UPDATE ON contest_members
BEGIN UPDATE standings_token SET token = random() WHERE id = 1; END;
CREATE TRIGGER standings_token_members_delete AFTER DELETE ON contest_members
BEGIN UPDATE standings_token SET token = random() WHERE id = 1; END;

CREATE TRIGGER standings_token_people_insert AFTER INSERT ON people
BEGIN UPDATE standings_token SET token = random() WHERE id = 1; END;
CREATE TRIGGER standings_token_people_name AFTER UPDATE OF name ON people
BEGIN UPDATE standings_token SET token = random() WHERE id = 1; END;
CREATE TRIGGER standings_token_people_delete AFTER DELETE ON people
BEGIN UPDATE standings_token SET token = random() WHERE id = 1; END;
