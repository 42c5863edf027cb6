-- SQLite's functions that leadboard's SQL uses, so that one statement runs on both
-- engines (store/sql.rs). Each behaves as SQLite's for the arguments the store passes.

-- instr(haystack, needle): the 1-based position of needle, 0 when absent.
CREATE FUNCTION instr(haystack text, needle text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN strpos(haystack, needle);

-- Two-argument max and min are SQLite's scalar greatest and least (NULL if either is).
CREATE FUNCTION max(a bigint, b bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE greatest(a, b) END;
CREATE FUNCTION min(a bigint, b bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE least(a, b) END;

-- json_extract(json, '$.key[.key…]'): the member's value as text (NULL when absent).
CREATE FUNCTION json_extract(doc text, path text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN (doc::jsonb) #>> string_to_array(substr(path, 3), '.');

-- group_concat(x): the non-NULL values joined by commas (in no promised order, as in
-- SQLite).
CREATE FUNCTION group_concat_step(joined text, value text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN joined || ',' || value;
CREATE AGGREGATE group_concat(text) (SFUNC = group_concat_step, STYPE = text);

-- json_each(array) as the store uses it: the array's elements, as text, in a column
-- named value.
CREATE FUNCTION json_each(doc text) RETURNS TABLE (value text)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT e FROM json_array_elements_text(doc::json) AS e $$;
