-- The look-alike test's containment index. A new claim's core name was compared with
-- every claimed name of its family (`instr` both ways): a scan of all subjects on
-- every report, growing with the programme. Now:
-- * a name contains a key of two or more characters only if the name has the key's
--   first eight characters (its head) among its runs of 2 to 8 characters, kept here;
-- * a key contains a name only if the key has the name's head among its runs, found
--   by `subjects_by_head`.
-- Both give candidates, which the look-alike test then checks exactly. Filled at
-- startup for what existed before this table, and on every new subject after.
CREATE TABLE name_parts (
    space TEXT NOT NULL CHECK (space IN ('client', 'channel')),
    part  TEXT NOT NULL,
    owner INTEGER NOT NULL REFERENCES subjects (id)
) STRICT;
CREATE INDEX name_parts_by_part ON name_parts (space, part);
-- `substr` counts characters; 8 is `names::PART_CHARS`.
CREATE INDEX subjects_by_head ON subjects (family, substr(name_key, 1, 8));
