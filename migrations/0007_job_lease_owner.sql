-- Who holds a job's lease: 'service' (the scheduler) or 'command' (`leadboard jobs
-- run`, `sync-directory`). Only one service runs on a database, so a lease the service
-- still holds when it starts was left by a run it abandoned or crashed in, and is
-- released at start instead of blocking that job's catch-up run.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
