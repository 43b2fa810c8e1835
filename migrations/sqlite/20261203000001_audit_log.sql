-- Who changed what through the management API and the admin UI: one row per create, update,
-- delete, regeneration or block, with the object as it was before and after (NULL where it
-- did not exist). Rows are appended, never updated, and read newest first by id, which is
-- also the keyset cursor: AUTOINCREMENT so an id is never handed out twice. `actor`,
-- `action` and `object_type` are checked by the code that writes them, so new kinds need no
-- schema change. Callers snapshot what is stored (key hashes, sealed credentials), never a
-- secret in clear.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    before      TEXT,
    after       TEXT
);
CREATE INDEX audit_log_by_object ON audit_log (object_type, object_id, id);
CREATE INDEX audit_log_by_actor ON audit_log (actor, id);
CREATE INDEX audit_log_by_at ON audit_log (at);
