-- Provider credentials (linked GitHub accounts' OAuth tokens, ...), sealed by the application
-- with AES-256-GCM before they reach the database: `ciphertext` includes the tag, `nonce` is
-- the 96-bit nonce, and the associated data is `provider/owner`. Owner is `default` for the
-- shared account or `key:<token hash>` for a virtual key's own account. No foreign key to
-- virtual_keys: `default` is not a key, and a key's account is cleaned up by the application.
CREATE TABLE provider_credentials (
    provider   TEXT NOT NULL,
    owner      TEXT NOT NULL,
    label      TEXT,
    ciphertext BYTEA NOT NULL,
    nonce      BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, owner)
);

-- Credential changes go through the change feed too (entity id `provider/owner`), so every
-- process reloads a newly linked account without a restart.
ALTER TABLE change_log DROP CONSTRAINT change_log_kind_check;
ALTER TABLE change_log ADD CONSTRAINT change_log_kind_check
    CHECK (kind IN ('key', 'user', 'team', 'credential'));
