-- A person's level and confirmer flag set by an admin on the console (管理), for
-- people WeCom cannot describe. They win over the directory source and the
-- configuration's overrides on every sync and reload, until cleared. NULL: not set.
CREATE TABLE console_person_settings (
    userid    TEXT PRIMARY KEY REFERENCES people (userid),
    level     TEXT,
    confirmer INTEGER CHECK (confirmer IN (0, 1)),
    set_by    TEXT NOT NULL,
    set_at    INTEGER NOT NULL
);
