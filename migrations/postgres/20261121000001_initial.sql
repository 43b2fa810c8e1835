-- tollgate's system of record on PostgreSQL.
--
-- Timestamps are TIMESTAMPTZ, JSON is JSONB (`models` is a JSON array of strings).
-- Column names follow LiteLLM's management API so its habits carry over.

CREATE TABLE users (
    user_id               TEXT PRIMARY KEY,
    user_email            TEXT,
    user_role             TEXT,
    models                JSONB NOT NULL DEFAULT '[]',
    max_budget            DOUBLE PRECISION,
    budget_duration       TEXT,
    rpm_limit             BIGINT,
    tpm_limit             BIGINT,
    max_parallel_requests BIGINT,
    spend                 DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_reset_at       TIMESTAMPTZ,
    metadata              JSONB NOT NULL DEFAULT '{}',
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX users_created_at_idx ON users (created_at, user_id);
CREATE INDEX users_budget_reset_at_idx ON users (budget_reset_at)
    WHERE budget_reset_at IS NOT NULL;

CREATE TABLE teams (
    team_id               TEXT PRIMARY KEY,
    team_alias            TEXT,
    models                JSONB NOT NULL DEFAULT '[]',
    max_budget            DOUBLE PRECISION,
    budget_duration       TEXT,
    rpm_limit             BIGINT,
    tpm_limit             BIGINT,
    max_parallel_requests BIGINT,
    spend                 DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_reset_at       TIMESTAMPTZ,
    blocked               BOOLEAN NOT NULL DEFAULT FALSE,
    metadata              JSONB NOT NULL DEFAULT '{}',
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX teams_created_at_idx ON teams (created_at, team_id);
CREATE INDEX teams_budget_reset_at_idx ON teams (budget_reset_at)
    WHERE budget_reset_at IS NOT NULL;

CREATE TABLE team_members (
    team_id  TEXT NOT NULL REFERENCES teams (team_id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    role     TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    added_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_id_idx ON team_members (user_id);

CREATE TABLE virtual_keys (
    token_hash            TEXT PRIMARY KEY,
    key_name              TEXT NOT NULL,
    -- LiteLLM refuses duplicate aliases; NULLs do not collide.
    key_alias             TEXT CONSTRAINT virtual_keys_key_alias_key UNIQUE,
    -- The store clears these explicitly (to log the change); the actions are a safety net.
    user_id               TEXT REFERENCES users (user_id) ON DELETE SET NULL,
    team_id               TEXT REFERENCES teams (team_id) ON DELETE SET NULL,
    models                JSONB NOT NULL DEFAULT '[]',
    max_budget            DOUBLE PRECISION,
    budget_duration       TEXT,
    rpm_limit             BIGINT,
    tpm_limit             BIGINT,
    max_parallel_requests BIGINT,
    spend                 DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_reset_at       TIMESTAMPTZ,
    expires               TIMESTAMPTZ,
    blocked               BOOLEAN NOT NULL DEFAULT FALSE,
    metadata              JSONB NOT NULL DEFAULT '{}',
    permissions           JSONB NOT NULL DEFAULT '{}',
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX virtual_keys_created_at_idx ON virtual_keys (created_at, token_hash);
CREATE INDEX virtual_keys_user_id_idx ON virtual_keys (user_id);
CREATE INDEX virtual_keys_team_id_idx ON virtual_keys (team_id);
CREATE INDEX virtual_keys_budget_reset_at_idx ON virtual_keys (budget_reset_at)
    WHERE budget_reset_at IS NOT NULL;

-- Raw spend records, partitioned by month so retention drops whole partitions instead of
-- deleting row by row. The partition key must be part of the primary key, so a record is
-- identified by (request_id, started_at); a retried record carries the same started_at.
-- No foreign keys: spend outlives the keys, users and teams it names.
CREATE TABLE spend_logs (
    request_id        TEXT NOT NULL,
    started_at        TIMESTAMPTZ NOT NULL,
    ended_at          TIMESTAMPTZ NOT NULL,
    token_hash        TEXT,
    user_id           TEXT,
    team_id           TEXT,
    api               TEXT NOT NULL,
    requested_model   TEXT NOT NULL,
    model_group       TEXT NOT NULL,
    served_model      TEXT NOT NULL,
    provider          TEXT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cached_tokens     BIGINT NOT NULL,
    cost              DOUBLE PRECISION NOT NULL,
    premium_units     DOUBLE PRECISION NOT NULL,
    latency_ms        DOUBLE PRECISION NOT NULL,
    ttft_ms           DOUBLE PRECISION,
    status            INTEGER NOT NULL,
    outcome           TEXT NOT NULL,
    attempts          JSONB NOT NULL,
    stream            BOOLEAN NOT NULL,
    request_body      JSONB,
    response_body     JSONB,
    PRIMARY KEY (request_id, started_at)
) PARTITION BY RANGE (started_at);

-- Safety net for records whose month has no partition yet (far-future clocks, or a backlog
-- older than the oldest partition). `tollgate_ensure_spend_partition` moves such rows into
-- the month's partition when it creates it.
CREATE TABLE spend_logs_default PARTITION OF spend_logs DEFAULT;

CREATE INDEX spend_logs_started_at_idx ON spend_logs (started_at);
CREATE INDEX spend_logs_token_hash_idx ON spend_logs (token_hash, started_at);
CREATE INDEX spend_logs_user_id_idx ON spend_logs (user_id, started_at);
CREATE INDEX spend_logs_team_id_idx ON spend_logs (team_id, started_at);

-- Daily totals the dashboard reads instead of scanning raw records. Missing key, user or team
-- is '' so the primary key can cover them.
CREATE TABLE spend_daily (
    day               DATE NOT NULL,
    token_hash        TEXT NOT NULL DEFAULT '',
    user_id           TEXT NOT NULL DEFAULT '',
    team_id           TEXT NOT NULL DEFAULT '',
    model_group       TEXT NOT NULL,
    served_model      TEXT NOT NULL,
    requests          BIGINT NOT NULL DEFAULT 0,
    failures          BIGINT NOT NULL DEFAULT 0,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cost              DOUBLE PRECISION NOT NULL DEFAULT 0,
    premium_units     DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (day, token_hash, user_id, team_id, model_group, served_model)
);
CREATE INDEX spend_daily_token_hash_idx ON spend_daily (token_hash, day);
CREATE INDEX spend_daily_user_id_idx ON spend_daily (user_id, day);
CREATE INDEX spend_daily_team_id_idx ON spend_daily (team_id, day);

-- The change feed that keeps every process's caches fresh. Writers serialise on an advisory
-- lock just before appending, so `seq` order is commit order and a reader polling
-- `seq > last_seen` never skips a row committed late.
CREATE TABLE change_log (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('key', 'user', 'team')),
    entity_id  TEXT NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL
);

-- Creates the monthly partition of spend_logs that holds `month_start` (any day of the
-- month) if it is missing, moving any rows of that month out of the default partition first
-- (attaching a partition fails while the default holds rows in its range). Safe to call
-- concurrently: callers serialise on an advisory lock. Returns whether it created one.
CREATE FUNCTION tollgate_ensure_spend_partition(month_start DATE) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
DECLARE
    first_day DATE := make_date(
        extract(year FROM month_start)::int, extract(month FROM month_start)::int, 1);
    part TEXT := 'spend_logs_p' || to_char(first_day, 'YYYYMM');
    lo TIMESTAMPTZ := first_day::timestamp AT TIME ZONE 'UTC';
    hi TIMESTAMPTZ := (first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC';
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tollgate.spend_logs.partitions'));
    IF to_regclass(part) IS NOT NULL THEN
        RETURN FALSE;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE spend_logs INCLUDING DEFAULTS)', part);
    EXECUTE format(
        'WITH moved AS (DELETE FROM spend_logs_default WHERE started_at >= $1 AND started_at < $2 RETURNING *) '
        'INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
    EXECUTE format('ALTER TABLE spend_logs ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        part, lo, hi);
    RETURN TRUE;
END
$$;

-- Drops every monthly partition that ends at or before `cutoff` and returns how many rows
-- they held. Rows newer than the last whole month are left for a bounded DELETE.
-- Dropping a partition locks the parent exclusively; while that lock request waits behind a
-- long read, every spend insert queues behind it. The lock timeout bounds that stall: on
-- timeout the call fails and the next retention run tries again.
CREATE FUNCTION tollgate_drop_spend_partitions_before(cutoff TIMESTAMPTZ) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    part RECORD;
    part_end TIMESTAMPTZ;
    part_rows BIGINT;
    total BIGINT := 0;
BEGIN
    PERFORM set_config('lock_timeout', '5s', true);
    PERFORM pg_advisory_xact_lock(hashtext('tollgate.spend_logs.partitions'));
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'spend_logs'::regclass
          AND c.relname ~ '^spend_logs_p[0-9]{6}$'
        ORDER BY c.relname
    LOOP
        part_end := (to_date(substr(part.relname, 13, 6), 'YYYYMM') + interval '1 month')::timestamp
            AT TIME ZONE 'UTC';
        IF part_end <= cutoff THEN
            EXECUTE format('SELECT count(*) FROM %I', part.relname) INTO part_rows;
            EXECUTE format('DROP TABLE %I', part.relname);
            total := total + part_rows;
        END IF;
    END LOOP;
    RETURN total;
END
$$;
