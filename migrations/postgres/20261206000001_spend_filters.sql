-- The logs filter by model (the name asked for, the model group or the served model),
-- outcome and HTTP status, newest first. A common value is found quickest by walking
-- `started_at` backwards, which the planner does; a rare one (or one that matches nothing)
-- would make that walk read the whole table, so each filter has an index of its own,
-- ordered by time within the value. The three model indexes serve the model filter's OR
-- together (a bitmap OR of the three).
--
-- On the partitioned parent each index is built on every partition, the default one
-- included; partitions attached later get them when they are attached. Building them
-- holds off spend inserts for as long as it takes (seconds per million records); the spend
-- writer keeps the records meanwhile.
CREATE INDEX spend_logs_requested_model_idx ON spend_logs (requested_model, started_at);
CREATE INDEX spend_logs_model_group_idx ON spend_logs (model_group, started_at);
CREATE INDEX spend_logs_served_model_idx ON spend_logs (served_model, started_at);
CREATE INDEX spend_logs_outcome_idx ON spend_logs (outcome, started_at);
CREATE INDEX spend_logs_status_idx ON spend_logs (status, started_at);
