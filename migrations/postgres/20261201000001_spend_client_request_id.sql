-- A spend record's `request_id` is always made by tollgate; the `x-request-id` a client sent
-- is kept here. Clients may repeat their ids (retries, or on purpose), and a repeated id must
-- never merge two requests into one record.
--
-- Adding a column and an index to the partitioned parent adds them to every partition, the
-- default one included; partitions attached later by `tollgate_ensure_spend_partition`
-- (created `LIKE spend_logs`, so with the column) get the index when they are attached.
ALTER TABLE spend_logs ADD COLUMN client_request_id TEXT;

CREATE INDEX spend_logs_client_request_id_idx ON spend_logs (client_request_id, started_at)
    WHERE client_request_id IS NOT NULL;
