-- Rollups narrow enough for the dashboard over a million records.
--
-- `spend_daily` has a row per day, key, user, team, model group and served model: with
-- thousands of keys active a day it holds nearly as many rows as there are records, so a
-- 30-day total or ranking read from it costs about as much as reading the records. Two
-- narrower rollups are written in the same transaction as the records:
--
-- - `spend_rollup`: per UTC day, sums per `dimension`: `outcome` (value: the outcome) and
--   `model` (value: the model group that served), with `bucket` 0; and `latency` (value: the
--   model group), counting requests per latency bucket (`bucket` indexes
--   LATENCY_BOUNDS_MS in crates/tollgate-store/src/rollup.rs, repeated in the backfill
--   below). `scope` is '' for everyone's requests, and a user id for that user's own (a
--   user's dashboard reads only their rows).
-- - `spend_window`: running sums over the last `span` days (1, 7, 30) per key, user, team and
--   model group, for rankings. `spend_window_state.through` is the day the windows end on:
--   they hold records of days `through - span + 1` onwards. The store rebuilds them from
--   `spend_daily` when the day changes, holding the state row exclusively; every insert of
--   records holds it shared, so a rebuild and an insert never interleave.
--
-- `fallbacks` counts successful requests answered by a model group other than the first one
-- tried (the first and the last attempt name different groups).

ALTER TABLE spend_daily ADD COLUMN fallbacks INTEGER NOT NULL DEFAULT 0;

CREATE TABLE spend_rollup (
    scope             TEXT NOT NULL,
    dimension         TEXT NOT NULL,
    day               TEXT NOT NULL,
    value             TEXT NOT NULL,
    bucket            INTEGER NOT NULL DEFAULT 0,
    requests          INTEGER NOT NULL DEFAULT 0,
    failures          INTEGER NOT NULL DEFAULT 0,
    fallbacks         INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost              REAL NOT NULL DEFAULT 0,
    premium_units     REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, dimension, day, value, bucket)
);

CREATE TABLE spend_window (
    span              INTEGER NOT NULL,
    dimension         TEXT NOT NULL,
    value             TEXT NOT NULL,
    requests          INTEGER NOT NULL DEFAULT 0,
    failures          INTEGER NOT NULL DEFAULT 0,
    fallbacks         INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost              REAL NOT NULL DEFAULT 0,
    premium_units     REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (span, dimension, value)
);
CREATE INDEX spend_window_ranking ON spend_window (span, dimension, requests DESC, cost DESC, value);

CREATE TABLE spend_window_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    through TEXT
);
INSERT INTO spend_window_state (id, through) VALUES (1, NULL);

-- The records kept so far, rolled up the way the insert path does it
-- (crates/tollgate-store/src/rollup.rs), replacing what the rollups held.
DELETE FROM spend_rollup;
UPDATE spend_daily SET fallbacks = 0 WHERE fallbacks <> 0;
CREATE TEMP TABLE spend_rollup_source AS
SELECT CASE WHEN own = 1 THEN user_id ELSE '' END AS scope,
       date(started_at) AS day,
       coalesce(token_hash, '') AS token_hash, coalesce(user_id, '') AS user_id,
       coalesce(team_id, '') AS team_id, model_group, served_model, outcome,
       prompt_tokens, completion_tokens, cost, premium_units,
       CASE WHEN outcome <> 'success' THEN 1 ELSE 0 END AS failed,
       CASE WHEN outcome = 'success'
                 AND json_extract(attempts, '$[0].model_group') <> json_extract(attempts, '$[#-1].model_group')
            THEN 1 ELSE 0 END AS fallback,
       CASE WHEN latency_ms < 25 THEN 0 WHEN latency_ms < 50 THEN 1
            WHEN latency_ms < 100 THEN 2 WHEN latency_ms < 200 THEN 3
            WHEN latency_ms < 300 THEN 4 WHEN latency_ms < 500 THEN 5
            WHEN latency_ms < 750 THEN 6 WHEN latency_ms < 1000 THEN 7
            WHEN latency_ms < 1500 THEN 8 WHEN latency_ms < 2000 THEN 9
            WHEN latency_ms < 3000 THEN 10 WHEN latency_ms < 5000 THEN 11
            WHEN latency_ms < 7500 THEN 12 WHEN latency_ms < 10000 THEN 13
            WHEN latency_ms < 15000 THEN 14 WHEN latency_ms < 20000 THEN 15
            WHEN latency_ms < 30000 THEN 16 WHEN latency_ms < 60000 THEN 17
            WHEN latency_ms < 120000 THEN 18 ELSE 19 END AS bucket
FROM spend_logs
CROSS JOIN (SELECT 0 AS own UNION ALL SELECT 1) AS scopes
WHERE own = 0 OR coalesce(user_id, '') <> '';

INSERT INTO spend_rollup (scope, dimension, day, value, bucket, requests, failures,
                          fallbacks, prompt_tokens, completion_tokens, cost, premium_units)
SELECT scope, 'outcome', day, outcome, 0, count(*), sum(failed), sum(fallback),
       sum(prompt_tokens), sum(completion_tokens), sum(cost), sum(premium_units)
FROM spend_rollup_source GROUP BY scope, day, outcome
UNION ALL
SELECT scope, 'model', day, model_group, 0, count(*), sum(failed), sum(fallback),
       sum(prompt_tokens), sum(completion_tokens), sum(cost), sum(premium_units)
FROM spend_rollup_source GROUP BY scope, day, model_group
UNION ALL
SELECT scope, 'latency', day, model_group, bucket, count(*), 0, 0, 0, 0, 0, 0
FROM spend_rollup_source GROUP BY scope, day, model_group, bucket;

-- Days whose records retention has removed, from `spend_daily`, which keeps every day: it
-- knows failures but not their outcome (counted as `failed`), nor latency or fallbacks.
CREATE TEMP TABLE spend_rollup_days AS
SELECT CASE WHEN own = 1 THEN user_id ELSE '' END AS scope, day, model_group, requests,
       failures, prompt_tokens, completion_tokens, cost, premium_units
FROM spend_daily
CROSS JOIN (SELECT 0 AS own UNION ALL SELECT 1) AS scopes
WHERE (own = 0 OR user_id <> '') AND day NOT IN (SELECT day FROM spend_rollup_source);

INSERT INTO spend_rollup (scope, dimension, day, value, bucket, requests, failures,
                          fallbacks, prompt_tokens, completion_tokens, cost, premium_units)
SELECT scope, 'model', day, model_group, 0, sum(requests), sum(failures), 0,
       sum(prompt_tokens), sum(completion_tokens), sum(cost), sum(premium_units)
FROM spend_rollup_days GROUP BY scope, day, model_group
UNION ALL
SELECT scope, 'outcome', day, 'success', 0, sum(requests - failures), 0, 0,
       sum(prompt_tokens), sum(completion_tokens), sum(cost), sum(premium_units)
FROM spend_rollup_days GROUP BY scope, day HAVING sum(requests - failures) > 0
UNION ALL
SELECT scope, 'outcome', day, 'failed', 0, sum(failures), sum(failures), 0, 0, 0, 0, 0
FROM spend_rollup_days GROUP BY scope, day HAVING sum(failures) > 0;
DROP TABLE spend_rollup_days;

UPDATE spend_daily AS d SET fallbacks = f.n
FROM (SELECT day, token_hash, user_id, team_id, model_group, served_model, sum(fallback) AS n
      FROM spend_rollup_source WHERE fallback = 1 AND scope = ''
      GROUP BY day, token_hash, user_id, team_id, model_group, served_model) AS f
WHERE d.day = f.day AND d.token_hash = f.token_hash AND d.user_id = f.user_id
  AND d.team_id = f.team_id AND d.model_group = f.model_group
  AND d.served_model = f.served_model;

DROP TABLE spend_rollup_source;
