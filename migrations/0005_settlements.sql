-- Settlement runs: what each monthly settlement used and produced, so that a later
-- configuration change cannot silently change a past month.
CREATE TABLE settlement_runs (
    id        INTEGER PRIMARY KEY,
    month     TEXT NOT NULL,
    run_at    INTEGER NOT NULL,
    run_by    TEXT NOT NULL,
    -- The reward rules, targets and points as configured for this run (JSON).
    rules     TEXT NOT NULL,
    total_fen INTEGER NOT NULL,
    lines     INTEGER NOT NULL,
    pending   INTEGER NOT NULL
) STRICT;

CREATE INDEX settlement_runs_month ON settlement_runs (month, id);
