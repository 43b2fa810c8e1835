-- The logs filter by model (the name asked for, the model group or the served model),
-- outcome and HTTP status, newest first. A rare value (or one that matches nothing) would
-- otherwise make the newest-first walk read the whole table, so each filter has an index
-- ordered by time within the value; the three model indexes serve the model filter's OR.
CREATE INDEX spend_logs_requested_model_idx ON spend_logs (requested_model, started_at);
CREATE INDEX spend_logs_model_group_idx ON spend_logs (model_group, started_at);
CREATE INDEX spend_logs_served_model_idx ON spend_logs (served_model, started_at);
CREATE INDEX spend_logs_outcome_idx ON spend_logs (outcome, started_at);
CREATE INDEX spend_logs_status_idx ON spend_logs (status, started_at);
