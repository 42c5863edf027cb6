-- The look-alike test's containment index. A new claim's core name was compared with
-- every claimed name of its family (`instr` both ways): a scan of all subjects on
-- every report, growing with the programme. Now:
-- * a name contains a key of two or more characters only if one of the name's
--   windows (its runs of 8 characters from each character, shorter at its end, at
--   least 2), kept here, starts with the key's first 8 characters (its head): a range
--   of `name_parts_by_part`;
-- * a key contains a name only if the key's runs of 2 to 8 characters include the
--   name's head, found by `subjects_by_head`.
-- Both give candidates, which the look-alike test then checks exactly. Filled at
-- startup for what existed before this table, and on every new subject after.
CREATE TABLE name_parts (
    space TEXT NOT NULL CHECK (space IN ('client', 'channel')),
    part  TEXT NOT NULL,
    owner INTEGER NOT NULL
) STRICT;
CREATE INDEX name_parts_by_part ON name_parts (space, part);
-- `substr` counts characters; 8 is `names::PART_CHARS`.
CREATE INDEX subjects_by_head ON subjects (family, substr(name_key, 1, 8));
