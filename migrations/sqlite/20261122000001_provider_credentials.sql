-- Provider credentials (linked GitHub accounts' OAuth tokens, ...), sealed by the application
-- with AES-256-GCM before they reach the database: `ciphertext` includes the tag, `nonce` is
-- the 96-bit nonce, and the associated data is `provider/owner`. Owner is `default` for the
-- shared account or `key:<token hash>` for a virtual key's own account.
CREATE TABLE provider_credentials (
    provider   TEXT NOT NULL,
    owner      TEXT NOT NULL,
    label      TEXT,
    ciphertext BLOB NOT NULL,
    nonce      BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (provider, owner)
);

-- Credential changes go through the change feed too (entity id `provider/owner`). SQLite
-- cannot alter a CHECK constraint, so change_log is rebuilt with the wider one, keeping every
-- row and the AUTOINCREMENT high-water mark (readers remember the last seq they saw; a seq
-- must never be handed out twice).
CREATE TABLE change_log_new (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('key', 'user', 'team', 'credential')),
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
