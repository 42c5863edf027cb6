-- The rule set (rewards, targets, points) in force over time. A period starts when a
-- configuration with another rule set than the last period's is applied: at start, by
-- a reload, or by a settlement run. A record is paid under the rule set of the period
-- it was reported in, so a change of rewards applies from then on; the first period
-- covers everything before it (from_ms 0).
CREATE TABLE rule_set_periods (
    id       INTEGER PRIMARY KEY,
    rule_set TEXT NOT NULL REFERENCES rule_sets (id),
    from_ms  INTEGER NOT NULL
) STRICT;

-- Months closed from now on are recomputed (for their adjustments) period by period,
-- as they were closed; a month closed before periods existed was computed under one
-- rule set, its own, and is recomputed under it alone.
ALTER TABLE month_closes ADD COLUMN by_period INTEGER NOT NULL DEFAULT 0;
