-- Rule sets, month close and the lines a closed month paid.

-- The reward rules, targets and points configuration as one canonical JSON text, known
-- by a short hash of it. Settlement lines name the rule set they were computed under;
-- a closed month is recomputed (for its adjustments) under its own.
CREATE TABLE rule_sets (
    id            TEXT PRIMARY KEY,
    rules         TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL
) STRICT;

-- The rule set of each run (NULL for runs before rule sets were kept).
ALTER TABLE settlement_runs ADD COLUMN rule_set TEXT REFERENCES rule_sets (id);

-- A closed (paid) month: who closed it, when, under which rule set, and the two files
-- exactly as finance received them (settling the month again writes these bytes).
CREATE TABLE month_closes (
    month       TEXT PRIMARY KEY,
    closed_at   INTEGER NOT NULL,
    closed_by   TEXT NOT NULL,
    rule_set    TEXT NOT NULL REFERENCES rule_sets (id),
    -- Records of the month still pending when it was closed (closed with --force).
    pending     INTEGER NOT NULL,
    total_fen   INTEGER NOT NULL,
    lines       INTEGER NOT NULL,
    csv         BLOB NOT NULL,
    csv_sha256  TEXT NOT NULL,
    xlsx        BLOB NOT NULL,
    xlsx_sha256 TEXT NOT NULL
) STRICT;

-- Every line a closed month paid: what later adjustments are computed against.
-- `for_month` is the month the pay belongs to: the closed month itself, or, for an
-- adjustment line it carried (补发 / 扣回), the earlier closed month it corrects.
CREATE TABLE month_close_lines (
    month      TEXT NOT NULL REFERENCES month_closes (month),
    seq        INTEGER NOT NULL,
    for_month  TEXT NOT NULL,
    userid     TEXT NOT NULL,
    record_id  INTEGER,
    contest_id TEXT,
    amount_fen INTEGER NOT NULL,
    -- The whole line (payee, rule, dates, rule set) as JSON.
    line       TEXT NOT NULL,
    PRIMARY KEY (month, seq)
) STRICT;

CREATE INDEX month_close_lines_for ON month_close_lines (for_month);
