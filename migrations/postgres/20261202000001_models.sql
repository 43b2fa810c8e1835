-- Models added at runtime (the management API and the admin UI), served beside config.yaml's.
-- `litellm_params` holds credentials sealed by the application (never in clear), and
-- `os.environ/NAME` references as written.
CREATE TABLE models (
    model_id       TEXT PRIMARY KEY,
    model_name     TEXT NOT NULL,
    litellm_params JSONB NOT NULL,
    model_info     JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_by     TEXT,
    updated_by     TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX models_by_name ON models (model_name);

-- The change feed's kinds are checked by the code that reads them (an unknown kind, from a
-- newer writer, is skipped), so new kinds need no schema change.
ALTER TABLE change_log DROP CONSTRAINT change_log_kind_check;
