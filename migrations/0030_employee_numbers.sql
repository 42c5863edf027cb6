-- An employee number (工号) where the directory has one: the settlement files name
-- the person by it for payroll.
ALTER TABLE people ADD COLUMN employee_no TEXT;
