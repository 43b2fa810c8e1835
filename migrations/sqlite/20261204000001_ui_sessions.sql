-- Admin web UI sign-ins. A row is keyed by the SHA-256 (hex) of the session cookie; the
-- cookie value itself is never stored, so a copy of the database cannot be used to sign in.
-- `subject` says who signed in (`ui_admin`, `master_key`, `user:<user_id>`) and `role` what
-- they may do; both are checked by the code that writes them, so new kinds need no schema
-- change. A user's sessions go when the user does. Expired rows are kept until the periodic
-- sweep (`expires_at` index) removes them; readers check `expires_at` themselves.
CREATE TABLE ui_sessions (
    session_hash TEXT PRIMARY KEY NOT NULL,
    subject      TEXT NOT NULL,
    user_id      TEXT REFERENCES users (user_id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX ui_sessions_user_id_idx ON ui_sessions (user_id);
CREATE INDEX ui_sessions_expires_at_idx ON ui_sessions (expires_at);

-- Users' UI passwords, as argon2 PHC strings made by the application. Kept out of `users` on
-- purpose: user rows are cached in memory, written to the directory snapshot and returned by
-- the management API, and a password hash must reach none of them.
CREATE TABLE user_passwords (
    user_id       TEXT PRIMARY KEY NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
