-- A transfer's closer is paid by the department they were in when they closed it, as
-- the reporter is by the department they reported from: kept on the record, so that
-- settling a past month again does not follow a later move.
ALTER TABLE records ADD COLUMN closer_dept INTEGER;
ALTER TABLE records ADD COLUMN closer_class TEXT CHECK (closer_class IS NULL OR closer_class IN ('cs', 'tr', 'other'));
UPDATE records SET
    closer_dept = (SELECT p.department_id FROM people p WHERE p.userid = records.closer),
    closer_class = (SELECT d.kind FROM people p JOIN departments d ON d.id = p.department_id
                    WHERE p.userid = records.closer)
WHERE closer IS NOT NULL;
