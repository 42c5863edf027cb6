-- Stakes are owed when a member joins and paid when an admin (or finance) records the
-- payment (缴费): the pool is shown as paid / owed, and settlement lists what is unpaid.
ALTER TABLE contest_members ADD COLUMN stake_paid_at INTEGER;
ALTER TABLE contest_members ADD COLUMN stake_paid_by TEXT;
