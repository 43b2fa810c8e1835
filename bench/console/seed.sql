-- Fills a tollgate PostgreSQL database (schema already migrated by `tollgate serve`) with a
-- console-sized data set, generated server-side. psql variables (set by bench/console):
--   keys, users, teams, records, days, audit
-- Spend records are inserted directly, and the rollups and spend totals are derived from
-- them with the same grain and rules as the store's insert path (crates/tollgate-store/src/
-- queries/spend.rs, rollup.rs): spend_daily per (UTC day, key, user, team, model group,
-- served model) with '' for a missing id, failures = outcome <> 'success', spend added to
-- the key, user and team a record names; the narrow rollups by the store's own
-- `tollgate_rebuild_spend_rollups()`. The running windows are left for the server to build
-- (it does at start and at each new day).
\set ON_ERROR_STOP on
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';
SET work_mem = '64MB';

BEGIN;

-- Monthly partitions for every month the records span (the server only makes this month's
-- and next month's).
SELECT count(*) FILTER (WHERE tollgate_ensure_spend_partition(m::date)) AS partitions_created
FROM generate_series(date_trunc('month', now() - make_interval(days => :days)),
                     date_trunc('month', now()), interval '1 month') AS m;

INSERT INTO teams (team_id, team_alias, created_at, updated_at)
SELECT 'team-' || lpad(i::text, 3, '0'), 'Team ' || i,
       now() - interval '90 days' + i * interval '1 minute',
       now() - interval '90 days' + i * interval '1 minute'
FROM generate_series(1, :teams) AS i;

INSERT INTO users (user_id, user_email, user_role, created_at, updated_at)
SELECT 'user-' || lpad(i::text, 5, '0'), 'user' || i || '@example.com',
       CASE WHEN i % 50 = 0 THEN 'proxy_admin' ELSE 'internal_user' END,
       now() - interval '80 days' + i * interval '1 minute',
       now() - interval '80 days' + i * interval '1 minute'
FROM generate_series(1, :users) AS i;

-- Every user is in one team: team ((i - 1) % teams) + 1.
INSERT INTO team_members (team_id, user_id, role, added_at)
SELECT 'team-' || lpad((((i - 1) % :teams) + 1)::text, 3, '0'),
       'user-' || lpad(i::text, 5, '0'),
       CASE WHEN i <= :teams THEN 'admin' ELSE 'user' END,
       now() - interval '70 days'
FROM generate_series(1, :users) AS i;

-- Keys: 70% belong to a user (and then, two times in three, to that user's team), 10% to a
-- team only, 20% to nobody. Half have an alias. Created one every 8 minutes, oldest first.
CREATE TEMP TABLE seed_keys AS
SELECT i AS idx,
       encode(sha256(convert_to('sk-console-bench-' || i, 'UTF8')), 'hex') AS token_hash,
       u AS user_n,
       CASE WHEN i % 10 < 7 THEN 'user-' || lpad(u::text, 5, '0') END AS user_id,
       CASE WHEN i % 10 < 7 AND i % 3 <> 0 THEN 'team-' || lpad((((u - 1) % :teams) + 1)::text, 3, '0')
            WHEN i % 10 = 7 THEN 'team-' || lpad(((i % :teams) + 1)::text, 3, '0') END AS team_id
FROM generate_series(1, :keys) AS i, LATERAL (SELECT ((i * 7919) % :users) + 1 AS u) AS uu;
CREATE UNIQUE INDEX ON seed_keys (idx);

INSERT INTO virtual_keys (token_hash, key_name, key_alias, user_id, team_id, models, max_budget,
                          budget_duration, rpm_limit, tpm_limit, spend, blocked, metadata,
                          permissions, created_at, updated_at)
SELECT token_hash, 'sk-...' || right(token_hash, 4),
       CASE WHEN idx % 2 = 0 THEN 'key-' || lpad(idx::text, 5, '0') END,
       user_id, team_id, '[]',
       CASE WHEN idx % 4 = 0 THEN 100.0 END, CASE WHEN idx % 4 = 0 THEN '30d' END,
       CASE WHEN idx % 5 = 0 THEN 600 END, NULL, 0, idx % 97 = 0, '{}', '{}',
       now() - (:keys - idx) * interval '8 minutes', now() - (:keys - idx) * interval '8 minutes'
FROM seed_keys;

-- The models requests go to, with their share of traffic (per mille) and price per token.
-- `o1` is rare (0.2%), so filtering the logs by it finds few matches among many records.
CREATE TEMP TABLE seed_models (lo int, hi int, model_group text, served_model text,
                               provider text, in_price float8, out_price float8, premium float8);
INSERT INTO seed_models VALUES
    (0, 400, 'gpt-4o-mini', 'openai/gpt-4o-mini', 'openai', 0.15e-6, 0.6e-6, 0),
    (400, 600, 'gpt-4o', 'openai/gpt-4o', 'openai', 2.5e-6, 10e-6, 0),
    (600, 750, 'claude-sonnet', 'anthropic/claude-sonnet-4', 'anthropic', 3e-6, 15e-6, 0),
    (750, 850, 'claude-haiku', 'anthropic/claude-haiku-4', 'anthropic', 0.8e-6, 4e-6, 0),
    (850, 948, 'gemini-flash', 'gemini/gemini-2.0-flash', 'gemini', 0.1e-6, 0.4e-6, 0),
    (948, 998, 'copilot-gpt-4.1', 'github_copilot/gpt-4.1', 'github_copilot', 0, 0, 1),
    (998, 1000, 'o1', 'openai/o1', 'openai', 15e-6, 60e-6, 0);

-- Records: uniform over the last `days` days; the key is drawn log-uniformly (Zipf-like:
-- a few keys carry most traffic, most keys a little). Outcomes as tollgate records them
-- (crates/tollgate-proxy/src/record): 0.5% refused before any upstream (401, 403, 429, 400;
-- no served model), 2% upstream_failed (502, 503, 504, 429), 0.5% stream_failed (200),
-- 0.1% client_disconnected (status 0); the rest success. One gpt-4o-mini request in ten
-- asks for it by the alias `mini`. 2% of the successful
-- ones were answered by a fallback after gpt-4o refused them.
INSERT INTO spend_logs (request_id, client_request_id, started_at, ended_at, token_hash, user_id,
                        team_id, api, requested_model, model_group, served_model, provider,
                        prompt_tokens, completion_tokens, cached_tokens, cost, premium_units,
                        latency_ms, ttft_ms, status, outcome, attempts, stream, request_body,
                        response_body)
SELECT gen_random_uuid()::text,
       CASE WHEN s.g % 5 = 0 THEN 'client-' || s.g END,
       s.t, s.t + make_interval(secs => s.lat / 1000.0),
       k.token_hash, k.user_id, k.team_id,
       CASE WHEN m.provider = 'anthropic' AND s.g % 2 = 0 THEN 'messages' ELSE 'chat_completions' END,
       CASE WHEN m.model_group = 'gpt-4o-mini' AND s.g % 10 = 3 THEN 'mini' ELSE m.model_group END,
       m.model_group,
       CASE WHEN s.outcome = 'refused' THEN '' ELSE m.served_model END,
       CASE WHEN s.outcome = 'refused' THEN '' ELSE m.provider END,
       s.pt, CASE WHEN s.outcome = 'success' THEN s.ct ELSE 0 END, s.pt / 4,
       CASE WHEN s.outcome = 'success' THEN s.pt * m.in_price + s.ct * m.out_price ELSE 0 END,
       CASE WHEN s.outcome = 'success' THEN m.premium ELSE 0 END,
       s.lat, CASE WHEN s.stream THEN s.lat / 5 END,
       s.status, s.outcome,
       CASE WHEN s.outcome = 'refused' THEN
           jsonb_build_array(jsonb_build_object('outcome', 'refused', 'reason', 'limit'))
       WHEN s.fell_back THEN jsonb_build_array(
           jsonb_build_object('model_group', 'gpt-4o', 'outcome', 'rate_limited',
                              'status', 429, 'latency_ms', 3.0),
           jsonb_build_object('model_group', m.model_group, 'served_model', m.served_model,
                              'provider', m.provider, 'outcome', 'answered',
                              'status', s.status, 'latency_ms', s.lat))
       ELSE jsonb_build_array(jsonb_build_object(
           'model_group', m.model_group, 'served_model', m.served_model, 'provider', m.provider,
           'status', s.status, 'latency_ms', s.lat)) END,
       s.stream, NULL, NULL
FROM (
    SELECT r.*,
           CASE WHEN r.o < 0.005 THEN 'refused'
                WHEN r.o < 0.025 THEN 'upstream_failed'
                WHEN r.o < 0.030 THEN 'stream_failed'
                WHEN r.o < 0.031 THEN 'client_disconnected'
                ELSE 'success' END AS outcome,
           r.o >= 0.031 AND r.f < 0.02 AS fell_back,
           CASE WHEN r.o < 0.005 THEN (ARRAY[401, 403, 429, 400])[r.g % 4 + 1]
                WHEN r.o < 0.025 THEN (ARRAY[502, 503, 504, 429])[r.g % 4 + 1]
                WHEN r.o < 0.030 THEN 200
                WHEN r.o < 0.031 THEN 0
                ELSE 200 END AS status
    FROM (
        SELECT g,
               now() - random() * make_interval(days => :days) AS t,
               least(:keys, greatest(1, floor(exp(random() * ln(:keys + 1)))::int)) AS key_idx,
               floor(random() * 1000)::int AS pct,
               random() AS o,
               random() AS f,
               random() < 0.6 AS stream,
               (50 + floor(random() * 3000))::bigint AS pt,
               (10 + floor(random() * 800))::bigint AS ct,
               round((200 + random() * 4000)::numeric, 1)::float8 AS lat
        FROM generate_series(1, :records) AS g
    ) AS r
) AS s
JOIN seed_keys AS k ON k.idx = s.key_idx
JOIN seed_models AS m ON s.pct >= m.lo AND s.pct < m.hi;

INSERT INTO spend_daily (day, token_hash, user_id, team_id, model_group, served_model, requests,
                         failures, prompt_tokens, completion_tokens, cost, premium_units)
SELECT (started_at AT TIME ZONE 'UTC')::date, coalesce(token_hash, ''), coalesce(user_id, ''),
       coalesce(team_id, ''), model_group, served_model, count(*),
       count(*) FILTER (WHERE outcome <> 'success'), sum(prompt_tokens), sum(completion_tokens),
       sum(cost), sum(premium_units)
FROM spend_logs
GROUP BY 1, 2, 3, 4, 5, 6;

-- The narrow rollups and the fallback counts, by the function the migration used.
SELECT tollgate_rebuild_spend_rollups();

UPDATE virtual_keys AS v SET spend = s.cost
FROM (SELECT token_hash, sum(cost) AS cost FROM spend_logs GROUP BY 1) AS s
WHERE v.token_hash = s.token_hash;
UPDATE users AS u SET spend = s.cost
FROM (SELECT user_id, sum(cost) AS cost FROM spend_logs GROUP BY 1) AS s
WHERE u.user_id = s.user_id;
UPDATE teams AS t SET spend = s.cost
FROM (SELECT team_id, sum(cost) AS cost FROM spend_logs GROUP BY 1) AS s
WHERE t.team_id = s.team_id;

-- Audit: one `create` per key (at its creation), then updates and blocks until `audit` rows.
INSERT INTO audit_log (at, actor, action, object_type, object_id, before, after)
SELECT at, actor, action, 'key', k.token_hash,
       CASE WHEN action = 'create' THEN NULL
            ELSE jsonb_build_object('token_hash', k.token_hash, 'rpm_limit', NULL) END,
       jsonb_build_object('token_hash', k.token_hash, 'key_alias', 'key-' || k.idx,
                          'rpm_limit', CASE WHEN action = 'create' THEN NULL ELSE 600 END)
FROM (
    SELECT i,
           CASE WHEN i <= :keys THEN now() - (:keys - i) * interval '8 minutes'
                ELSE now() - random() * interval '30 days' END AS at,
           CASE i % 3 WHEN 0 THEN 'ui_admin' WHEN 1 THEN 'master_key'
                ELSE 'user:user-' || lpad(((i % :users) + 1)::text, 5, '0') END AS actor,
           CASE WHEN i <= :keys THEN 'create' WHEN i % 7 = 0 THEN 'block' ELSE 'update' END
               AS action,
           CASE WHEN i <= :keys THEN i ELSE ((i * 31) % :keys) + 1 END AS key_idx
    FROM generate_series(1, greatest(:audit, :keys)) AS i
) AS a
JOIN seed_keys AS k ON k.idx = a.key_idx
ORDER BY at;

COMMIT;

ANALYZE;
