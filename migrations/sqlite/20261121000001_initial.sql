-- tollgate's system of record on embedded SQLite.
--
-- Timestamps are TEXT in one fixed UTC form, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, written by the
-- store itself, so comparing strings compares instants. Days are TEXT `YYYY-MM-DD`. JSON is
-- TEXT (`models` is a JSON array of strings). Booleans are 0/1.

CREATE TABLE users (
    user_id               TEXT PRIMARY KEY NOT NULL,
    user_email            TEXT,
    user_role             TEXT,
    models                TEXT NOT NULL DEFAULT '[]',
    max_budget            REAL,
    budget_duration       TEXT,
    rpm_limit             INTEGER,
    tpm_limit             INTEGER,
    max_parallel_requests INTEGER,
    spend                 REAL NOT NULL DEFAULT 0,
    budget_reset_at       TEXT,
    metadata              TEXT NOT NULL DEFAULT '{}',
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);
CREATE INDEX users_created_at_idx ON users (created_at, user_id);
CREATE INDEX users_budget_reset_at_idx ON users (budget_reset_at)
    WHERE budget_reset_at IS NOT NULL;

CREATE TABLE teams (
    team_id               TEXT PRIMARY KEY NOT NULL,
    team_alias            TEXT,
    models                TEXT NOT NULL DEFAULT '[]',
    max_budget            REAL,
    budget_duration       TEXT,
    rpm_limit             INTEGER,
    tpm_limit             INTEGER,
    max_parallel_requests INTEGER,
    spend                 REAL NOT NULL DEFAULT 0,
    budget_reset_at       TEXT,
    blocked               BOOLEAN NOT NULL DEFAULT 0,
    metadata              TEXT NOT NULL DEFAULT '{}',
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);
CREATE INDEX teams_created_at_idx ON teams (created_at, team_id);
CREATE INDEX teams_budget_reset_at_idx ON teams (budget_reset_at)
    WHERE budget_reset_at IS NOT NULL;

CREATE TABLE team_members (
    team_id  TEXT NOT NULL REFERENCES teams (team_id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    role     TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    added_at TEXT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_id_idx ON team_members (user_id);

CREATE TABLE virtual_keys (
    token_hash            TEXT PRIMARY KEY NOT NULL,
    key_name              TEXT NOT NULL,
    -- LiteLLM refuses duplicate aliases; NULLs do not collide.
    key_alias             TEXT UNIQUE,
    -- The store clears these explicitly (to log the change); the actions are a safety net.
    user_id               TEXT REFERENCES users (user_id) ON DELETE SET NULL,
    team_id               TEXT REFERENCES teams (team_id) ON DELETE SET NULL,
    models                TEXT NOT NULL DEFAULT '[]',
    max_budget            REAL,
    budget_duration       TEXT,
    rpm_limit             INTEGER,
    tpm_limit             INTEGER,
    max_parallel_requests INTEGER,
    spend                 REAL NOT NULL DEFAULT 0,
    budget_reset_at       TEXT,
    expires               TEXT,
    blocked               BOOLEAN NOT NULL DEFAULT 0,
    metadata              TEXT NOT NULL DEFAULT '{}',
    permissions           TEXT NOT NULL DEFAULT '{}',
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);
CREATE INDEX virtual_keys_created_at_idx ON virtual_keys (created_at, token_hash);
CREATE INDEX virtual_keys_user_id_idx ON virtual_keys (user_id);
CREATE INDEX virtual_keys_team_id_idx ON virtual_keys (team_id);
CREATE INDEX virtual_keys_budget_reset_at_idx ON virtual_keys (budget_reset_at)
    WHERE budget_reset_at IS NOT NULL;

-- Raw spend records. No foreign keys: spend outlives the keys, users and teams it names.
CREATE TABLE spend_logs (
    request_id        TEXT PRIMARY KEY NOT NULL,
    started_at        TEXT NOT NULL,
    ended_at          TEXT NOT NULL,
    token_hash        TEXT,
    user_id           TEXT,
    team_id           TEXT,
    api               TEXT NOT NULL,
    requested_model   TEXT NOT NULL,
    model_group       TEXT NOT NULL,
    served_model      TEXT NOT NULL,
    provider          TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    cost              REAL NOT NULL,
    premium_units     REAL NOT NULL,
    latency_ms        REAL NOT NULL,
    ttft_ms           REAL,
    status            INTEGER NOT NULL,
    outcome           TEXT NOT NULL,
    attempts          TEXT NOT NULL,
    stream            BOOLEAN NOT NULL,
    request_body      TEXT,
    response_body     TEXT
);
CREATE INDEX spend_logs_started_at_idx ON spend_logs (started_at);
CREATE INDEX spend_logs_token_hash_idx ON spend_logs (token_hash, started_at);
CREATE INDEX spend_logs_user_id_idx ON spend_logs (user_id, started_at);
CREATE INDEX spend_logs_team_id_idx ON spend_logs (team_id, started_at);

-- Daily totals the dashboard reads instead of scanning raw records. Missing key, user or team
-- is '' so the primary key can cover them.
CREATE TABLE spend_daily (
    day               TEXT NOT NULL,
    token_hash        TEXT NOT NULL DEFAULT '',
    user_id           TEXT NOT NULL DEFAULT '',
    team_id           TEXT NOT NULL DEFAULT '',
    model_group       TEXT NOT NULL,
    served_model      TEXT NOT NULL,
    requests          INTEGER NOT NULL DEFAULT 0,
    failures          INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost              REAL NOT NULL DEFAULT 0,
    premium_units     REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (day, token_hash, user_id, team_id, model_group, served_model)
);
CREATE INDEX spend_daily_token_hash_idx ON spend_daily (token_hash, day);
CREATE INDEX spend_daily_user_id_idx ON spend_daily (user_id, day);
CREATE INDEX spend_daily_team_id_idx ON spend_daily (team_id, day);

-- The change feed that keeps every process's caches fresh. SQLite has one writer at a time,
-- so `seq` order is commit order. AUTOINCREMENT: a seq is never reused, even after deletes.
CREATE TABLE change_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('key', 'user', 'team')),
    entity_id  TEXT NOT NULL,
    changed_at TEXT NOT NULL
);
