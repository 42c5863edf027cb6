-- A placement is one person onboarding on one day: the placed person's normalised name
-- and the 入职 date identify it, and only one live placement may claim them (first
-- claim wins, as for clients and channels). Placements recorded before this migration
-- have no key and are not compared.
ALTER TABLE records ADD COLUMN person_key TEXT;
CREATE UNIQUE INDEX records_placement_claim ON records (person_key, onboard_date)
    WHERE kind = 'placement' AND person_key IS NOT NULL AND state IN ('onboarded', 'confirmed');
