-- Models added at runtime (the management API and the admin UI), served beside config.yaml's.
-- `litellm_params` holds credentials sealed by the application (never in clear), and
-- `os.environ/NAME` references as written.
CREATE TABLE models (
    model_id       TEXT PRIMARY KEY,
    model_name     TEXT NOT NULL,
    litellm_params TEXT NOT NULL,
    model_info     TEXT NOT NULL DEFAULT '{}',
    created_by     TEXT,
    updated_by     TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX models_by_name ON models (model_name);

-- The change feed's kinds are checked by the code that reads them (an unknown kind, from a
-- newer writer, is skipped), so new kinds need no schema change. SQLite cannot drop a CHECK
-- constraint: change_log is rebuilt without it, keeping every row and the AUTOINCREMENT
-- high-water mark (a seq must never be handed out twice).
CREATE TABLE change_log_new (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    entity_id  TEXT NOT NULL,
    changed_at TEXT NOT NULL
);
INSERT INTO change_log_new (seq, kind, entity_id, changed_at)
    SELECT seq, kind, entity_id, changed_at FROM change_log ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'change_log_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'change_log_new', seq FROM sqlite_sequence WHERE name = 'change_log';
DROP TABLE change_log;
ALTER TABLE change_log_new RENAME TO change_log;
