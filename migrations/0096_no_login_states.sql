-- A sign-in's OAuth state is kept in a signed cookie of the browser that asked for it
-- (src/web/session.rs), no longer in the database: asking to sign in writes nothing.
DROP TABLE web_login_states;
