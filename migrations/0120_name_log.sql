-- The look-alike test's index moves into memory (store::names, domain::lookalike).
-- Its tables kept an entry for every one-character deletion and every window of each
-- claimed name: about 16 index pages written by each report's commit, most of what the
-- callback writer spent on a report (BENCHMARKS.md, issue 16). The service now keeps
-- that index in memory and learns every name from this log, which triggers append to
-- in the changing transaction, whoever changes a name. (PostgreSQL keeps its tables:
-- its migrations are separate.)
CREATE TABLE name_log (
    seq      INTEGER PRIMARY KEY,
    -- 'client' or 'channel' (a subject's family), or 'person' (a record's placed person).
    space    TEXT NOT NULL,
    -- subjects.id, or records.id for 'person'.
    owner    INTEGER NOT NULL,
    -- The owner's core name from this row on; NULL: none.
    name_key TEXT
) STRICT;

-- Tells databases apart in one process (an index is held per database).
CREATE TABLE name_log_identity (value INTEGER NOT NULL) STRICT;
INSERT INTO name_log_identity (value) VALUES (random());

INSERT INTO name_log (space, owner, name_key) SELECT family, id, name_key FROM subjects ORDER BY id;
INSERT INTO name_log (space, owner, name_key)
    SELECT 'person', id, person_key FROM records WHERE person_key IS NOT NULL ORDER BY id;

CREATE TRIGGER name_log_subject_added AFTER INSERT ON subjects
BEGIN
    INSERT INTO name_log (space, owner, name_key) VALUES (NEW.family, NEW.id, NEW.name_key);
END;

CREATE TRIGGER name_log_subject_rekeyed AFTER UPDATE OF family, name_key ON subjects
WHEN NEW.name_key IS NOT OLD.name_key OR NEW.family IS NOT OLD.family
BEGIN
    INSERT INTO name_log (space, owner, name_key) VALUES (OLD.family, OLD.id, NULL);
    INSERT INTO name_log (space, owner, name_key) VALUES (NEW.family, NEW.id, NEW.name_key);
END;

CREATE TRIGGER name_log_person_added AFTER INSERT ON records
WHEN NEW.person_key IS NOT NULL
BEGIN
    INSERT INTO name_log (space, owner, name_key) VALUES ('person', NEW.id, NEW.person_key);
END;

CREATE TRIGGER name_log_person_changed AFTER UPDATE OF person_key ON records
WHEN NEW.person_key IS NOT OLD.person_key
BEGIN
    INSERT INTO name_log (space, owner, name_key) VALUES ('person', NEW.id, NEW.person_key);
END;

CREATE TRIGGER name_log_subject_removed AFTER DELETE ON subjects
BEGIN
    INSERT INTO name_log (space, owner, name_key) VALUES (OLD.family, OLD.id, NULL);
END;

CREATE TRIGGER name_log_person_removed AFTER DELETE ON records
WHEN OLD.person_key IS NOT NULL
BEGIN
    INSERT INTO name_log (space, owner, name_key) VALUES ('person', OLD.id, NULL);
END;

-- The log is appended to only.
CREATE TRIGGER name_log_append_only_update BEFORE UPDATE ON name_log
BEGIN
    SELECT RAISE(ABORT, 'name_log is append-only');
END;
CREATE TRIGGER name_log_append_only_delete BEFORE DELETE ON name_log
BEGIN
    SELECT RAISE(ABORT, 'name_log is append-only');
END;

DROP INDEX subjects_by_head;
DROP TABLE name_parts;
DROP TABLE name_variants;
