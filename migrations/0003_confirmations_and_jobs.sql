-- Confirmation cards, reminders, and the scheduler's memory.

-- Interactive template cards the bot sent. `task_id` is unique per app, for ever.
CREATE TABLE cards (
    task_id     TEXT PRIMARY KEY,
    -- 'confirm' (确认/驳回), 'onjob' (在岗/离职), 'finalise' (终审).
    purpose     TEXT NOT NULL CHECK (purpose IN ('confirm', 'onjob', 'finalise')),
    record_id   INTEGER REFERENCES records (id),
    contest_id  TEXT,
    -- JSON array of the userids it was sent to.
    recipients  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    -- Set once the card's buttons are replaced by the outcome.
    closed_at   INTEGER,
    outcome     TEXT
) STRICT;

CREATE INDEX cards_record ON cards (record_id, purpose);

-- Each reminder and escalation is sent once per record.
CREATE TABLE reminders (
    record_id INTEGER NOT NULL REFERENCES records (id),
    stage     TEXT NOT NULL CHECK (stage IN ('remind', 'escalate')),
    sent_at   INTEGER NOT NULL,
    PRIMARY KEY (record_id, stage)
) STRICT;

-- The scheduler: the last fire time each job ran for, and a lease so that one run of
-- a job happens at a time, also across processes (`leadboard jobs run`).
CREATE TABLE jobs (
    name          TEXT PRIMARY KEY,
    last_fire_at  INTEGER,
    last_run_at   INTEGER,
    last_outcome  TEXT,
    running_since INTEGER
) STRICT;
