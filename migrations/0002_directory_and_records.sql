-- The directory (from configuration or WeCom), clients and channels, and records.

-- Departments; `kind` is the effective kind (inherited from the parent when the
-- department has none of its own).
CREATE TABLE departments (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL,
    parent_id INTEGER,
    kind      TEXT NOT NULL CHECK (kind IN ('cs', 'tr', 'other')),
    active    INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
) STRICT;

-- People. A departed person is deactivated, never deleted: their records stay.
CREATE TABLE people (
    userid        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    department_id INTEGER NOT NULL REFERENCES departments (id),
    level         TEXT NOT NULL CHECK (level IN ('staff', 'supervisor', 'manager', 'director', 'vp', 'gm')),
    confirmer     INTEGER NOT NULL DEFAULT 0 CHECK (confirmer IN (0, 1)),
    active        INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
) STRICT;

CREATE INDEX people_name ON people (name);

-- What is claimed: a client (company) or a recruiting channel, identified by its
-- normalised name or, when known, its unified social credit code.
CREATE TABLE subjects (
    id          INTEGER PRIMARY KEY,
    family      TEXT NOT NULL CHECK (family IN ('client', 'channel')),
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,
    credit_code TEXT,
    -- 'reported' through the bot, or 'existing' (an old channel from configuration).
    origin      TEXT NOT NULL DEFAULT 'reported' CHECK (origin IN ('reported', 'existing')),
    created_at  INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX subjects_by_name ON subjects (family, name_key);
CREATE UNIQUE INDEX subjects_by_code ON subjects (family, credit_code) WHERE credit_code IS NOT NULL;

-- Records: one reported achievement each. `id` is the number people see (#12).
CREATE TABLE records (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('lead_c', 'lead_b', 'lead_a', 'channel_school',
                         'channel_agency', 'channel_person', 'placement', 'referral')),
    mode             TEXT NOT NULL CHECK (mode IN ('direct', 'transfer')),
    reporter         TEXT NOT NULL REFERENCES people (userid),
    -- The reporter's department and its kind when reporting (rewards depend on it).
    reporter_dept    INTEGER NOT NULL,
    reporter_class   TEXT NOT NULL CHECK (reporter_class IN ('cs', 'tr', 'other')),
    -- Transfers: the receiving department's member who closed it (set at report or
    -- on confirmation). The originator of a transfer is its reporter.
    closer           TEXT REFERENCES people (userid),
    subject_id       INTEGER REFERENCES subjects (id),
    -- What a claim competes for: the stage for clients, 'channel', 'referral'; NULL
    -- for placements.
    claim_slot       TEXT,
    -- Placements: the channel (NULL = self-recruited) and the onboarding date.
    channel_id       INTEGER REFERENCES subjects (id),
    onboard_date     TEXT,
    amount_fen       INTEGER CHECK (amount_fen IS NULL OR amount_fen > 0),
    fields           TEXT NOT NULL,
    -- Fixed at creation: a later configuration change does not rewrite history.
    points           INTEGER NOT NULL,
    stage_rule       TEXT NOT NULL DEFAULT 'cumulative' CHECK (stage_rule IN ('cumulative', 'highest')),
    state            TEXT NOT NULL CHECK (state IN ('reported', 'onboarded', 'agreed', 'confirmed',
                         'rejected', 'left', 'voided')),
    -- A placement used for a new channel's base indicator: its points are the
    -- channel's, so it does not count again as a placement.
    base_for         INTEGER REFERENCES records (id),
    occurred_at      INTEGER NOT NULL,
    decided_by       TEXT,
    decided_at       INTEGER,
    reason           TEXT,
    -- The state a voided record returns to when restored.
    voided_from      TEXT
) STRICT;

CREATE INDEX records_reporter ON records (reporter, occurred_at);
CREATE INDEX records_state ON records (state, occurred_at);
CREATE INDEX records_channel ON records (channel_id) WHERE channel_id IS NOT NULL;
CREATE INDEX records_subject ON records (subject_id, state) WHERE subject_id IS NOT NULL;

-- First claim wins, enforced here: one live claim per subject and slot.
CREATE UNIQUE INDEX records_first_claim ON records (subject_id, claim_slot)
    WHERE claim_slot IS NOT NULL AND state IN ('reported', 'onboarded', 'agreed', 'confirmed');

-- Records whose points count now: confirmed, not a channel's base placement, and, for
-- client stages recorded under the 'highest' rule, not outranked by a confirmed higher
-- stage of the same client.
CREATE VIEW counting_records AS
SELECT r.*
FROM records r
WHERE r.state = 'confirmed'
  AND r.base_for IS NULL
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
