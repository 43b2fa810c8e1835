-- When the spend of a budgeted key, user or team last changed (a spend batch added to it, or
-- a budget reset cleared it), as fixed-width UTC text like the other timestamps. Each
-- process polls "budgeted rows whose spend changed since T" every second, so spend recorded
-- by one process counts against the budget in the others within about two seconds. Rows
-- without a budget are never asked for and keep NULL.
ALTER TABLE virtual_keys ADD COLUMN spend_changed_at TEXT;
ALTER TABLE users ADD COLUMN spend_changed_at TEXT;
ALTER TABLE teams ADD COLUMN spend_changed_at TEXT;

CREATE INDEX virtual_keys_spend_changed_at_idx ON virtual_keys (spend_changed_at)
    WHERE max_budget IS NOT NULL;
CREATE INDEX users_spend_changed_at_idx ON users (spend_changed_at)
    WHERE max_budget IS NOT NULL;
CREATE INDEX teams_spend_changed_at_idx ON teams (spend_changed_at)
    WHERE max_budget IS NOT NULL;
