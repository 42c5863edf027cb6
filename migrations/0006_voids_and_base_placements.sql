-- Voiding keeps the decision it overrides: who voided, when and why are their own
-- columns, so a restored record still shows who confirmed it and when (and is not
-- "newly confirmed" on the day it was restored).
ALTER TABLE records ADD COLUMN voided_by TEXT;
ALTER TABLE records ADD COLUMN voided_at INTEGER;
ALTER TABLE records ADD COLUMN void_reason TEXT;
UPDATE records SET voided_by = decided_by, voided_at = decided_at, void_reason = reason WHERE state = 'voided';

-- A placement is a channel's base placement (its points are the channel's) only while
-- that channel record is live: when the channel is rejected or voided, the placement
-- counts as a placement again.
DROP VIEW counting_records;
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

-- The cache and the scores of contests that are not final follow the new view.
UPDATE records SET counted = (id IN (SELECT id FROM counting_records));
UPDATE contest_scores AS s SET points = (
    SELECT COALESCE(SUM(r.points), 0)
    FROM contest_members m, contests c, records r
    WHERE m.contest_id = s.contest_id AND m.userid = s.userid AND c.id = m.contest_id
      AND r.reporter = m.userid AND r.counted = 1
      AND instr(',' || c.kinds || ',', ',' || r.kind || ',') > 0
      AND r.occurred_at >= MAX(c.start_at, m.joined_at) AND r.occurred_at < c.cutoff_at)
WHERE s.contest_id IN (SELECT id FROM contests WHERE state != 'final');
