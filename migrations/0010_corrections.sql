-- Corrections and appeals: a reporter may withdraw a pending record (state
-- 'withdrawn', which never counts and frees its claim); a rejected record may be
-- appealed once; a contest may need several auditors' approvals to be final; claims
-- whose names look like an earlier claim's are flagged.

-- SQLite cannot change a CHECK constraint in place: the records table is rebuilt with
-- 'withdrawn' among its states (columns, indexes and the view as before). The tables
-- that reference records keep referring to it by name.
PRAGMA defer_foreign_keys = ON;
DROP VIEW counting_records;

CREATE TABLE records_new (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('lead_c', 'lead_b', 'lead_a', 'channel_school',
                         'channel_agency', 'channel_person', 'placement', 'referral')),
    mode             TEXT NOT NULL CHECK (mode IN ('direct', 'transfer')),
    reporter         TEXT NOT NULL REFERENCES people (userid),
    reporter_dept    INTEGER NOT NULL,
    reporter_class   TEXT NOT NULL CHECK (reporter_class IN ('cs', 'tr', 'other')),
    closer           TEXT REFERENCES people (userid),
    subject_id       INTEGER REFERENCES subjects (id),
    claim_slot       TEXT,
    channel_id       INTEGER REFERENCES subjects (id),
    onboard_date     TEXT,
    amount_fen       INTEGER CHECK (amount_fen IS NULL OR amount_fen > 0),
    fields           TEXT NOT NULL,
    points           INTEGER NOT NULL,
    stage_rule       TEXT NOT NULL DEFAULT 'cumulative' CHECK (stage_rule IN ('cumulative', 'highest')),
    -- 'withdrawn': taken back by its reporter while pending (decided_by is the reporter).
    state            TEXT NOT NULL CHECK (state IN ('reported', 'onboarded', 'agreed', 'confirmed',
                         'rejected', 'left', 'voided', 'withdrawn')),
    base_for         INTEGER REFERENCES records (id),
    occurred_at      INTEGER NOT NULL,
    decided_by       TEXT,
    decided_at       INTEGER,
    reason           TEXT,
    voided_from      TEXT,
    counted          INTEGER NOT NULL DEFAULT 0 CHECK (counted IN (0, 1)),
    voided_by        TEXT,
    voided_at        INTEGER,
    void_reason      TEXT,
    person_key       TEXT,
    closer_dept      INTEGER,
    closer_class     TEXT CHECK (closer_class IS NULL OR closer_class IN ('cs', 'tr', 'other'))
) STRICT;

INSERT INTO records_new (id, kind, mode, reporter, reporter_dept, reporter_class, closer, subject_id, claim_slot,
        channel_id, onboard_date, amount_fen, fields, points, stage_rule, state, base_for, occurred_at, decided_by,
        decided_at, reason, voided_from, counted, voided_by, voided_at, void_reason, person_key, closer_dept,
        closer_class)
    SELECT id, kind, mode, reporter, reporter_dept, reporter_class, closer, subject_id, claim_slot,
        channel_id, onboard_date, amount_fen, fields, points, stage_rule, state, base_for, occurred_at, decided_by,
        decided_at, reason, voided_from, counted, voided_by, voided_at, void_reason, person_key, closer_dept,
        closer_class
    FROM records;
DROP TABLE records;
ALTER TABLE records_new RENAME TO records;

CREATE INDEX records_reporter ON records (reporter, occurred_at);
CREATE INDEX records_state ON records (state, occurred_at);
CREATE INDEX records_channel ON records (channel_id) WHERE channel_id IS NOT NULL;
CREATE INDEX records_subject ON records (subject_id, state) WHERE subject_id IS NOT NULL;
CREATE INDEX records_counted ON records (reporter, occurred_at) WHERE counted = 1;
CREATE INDEX records_decided ON records (decided_at) WHERE state = 'confirmed';
CREATE UNIQUE INDEX records_first_claim ON records (subject_id, claim_slot)
    WHERE claim_slot IS NOT NULL AND state IN ('reported', 'onboarded', 'agreed', 'confirmed');
CREATE UNIQUE INDEX records_placement_claim ON records (person_key, onboard_date)
    WHERE kind = 'placement' AND person_key IS NOT NULL AND state IN ('onboarded', 'confirmed');

CREATE VIEW counting_records AS
SELECT r.*
FROM records r
WHERE r.state = 'confirmed'
  AND NOT EXISTS (
      SELECT 1 FROM records b
      WHERE b.id = r.base_for AND b.state IN ('reported', 'agreed', 'confirmed')
  )
  AND NOT (
      r.stage_rule = 'highest'
      AND r.kind IN ('lead_c', 'lead_b')
      AND EXISTS (
          SELECT 1 FROM records h
          WHERE h.subject_id = r.subject_id
            AND h.state = 'confirmed'
            AND (h.kind = 'lead_a' OR (h.kind = 'lead_b' AND r.kind = 'lead_c'))
      )
  );

-- Cards gain the audit group's appeal card (维持 / 改判).
CREATE TABLE cards_new (
    task_id     TEXT PRIMARY KEY,
    -- 'confirm' (确认/驳回), 'onjob' (在岗/离职), 'finalise' (终审), 'appeal' (维持/改判).
    purpose     TEXT NOT NULL CHECK (purpose IN ('confirm', 'onjob', 'finalise', 'appeal')),
    record_id   INTEGER REFERENCES records (id),
    contest_id  TEXT,
    recipients  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    closed_at   INTEGER,
    outcome     TEXT
) STRICT;
INSERT INTO cards_new SELECT task_id, purpose, record_id, contest_id, recipients, created_at, closed_at, outcome
    FROM cards;
DROP TABLE cards;
ALTER TABLE cards_new RENAME TO cards;
CREATE INDEX cards_record ON cards (record_id, purpose);

-- One appeal per record, by its reporter, against a rejection.
CREATE TABLE appeals (
    id          INTEGER PRIMARY KEY,
    record_id   INTEGER NOT NULL UNIQUE REFERENCES records (id),
    reporter    TEXT NOT NULL REFERENCES people (userid),
    reason      TEXT NOT NULL,
    -- The rejection appealed against, as it was.
    rejected_by TEXT,
    rejection   TEXT,
    created_at  INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'upheld', 'overturned')),
    decided_by  TEXT,
    decided_at  INTEGER
) STRICT;
CREATE INDEX appeals_open ON appeals (created_at) WHERE state = 'open';

-- Approvals of a contest's preliminary ranking (终审), one per auditor; a contest is
-- final once `audit.finalise_quorum` auditors approved the same ranking.
CREATE TABLE finalise_approvals (
    contest_id      TEXT NOT NULL REFERENCES contests (id),
    userid          TEXT NOT NULL REFERENCES people (userid),
    -- The ranking approved (team standings, JSON) and whether pending records were
    -- to be left out (待定=不计).
    ranking         TEXT NOT NULL,
    exclude_pending INTEGER NOT NULL CHECK (exclude_pending IN (0, 1)),
    approved_at     INTEGER NOT NULL,
    PRIMARY KEY (contest_id, userid)
) STRICT;

-- A claim stored but flagged for the confirmers and the audit group: its name looks
-- like an earlier claim's, its credit code is bound to a different name, or (a referral)
-- its old client is unknown to every record.
CREATE TABLE record_flags (
    record_id  INTEGER NOT NULL REFERENCES records (id),
    other_id   INTEGER REFERENCES records (id),
    kind       TEXT NOT NULL CHECK (kind IN ('lookalike', 'credit_code', 'unknown_client')),
    detail     TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX record_flags_by_record ON record_flags (record_id);
