-- When the spend of a budgeted key, user or team last changed (a spend batch added to it, or
-- a budget reset cleared it). Each process polls "budgeted rows whose spend changed since T"
-- every second, so spend recorded by one replica counts against the budget on the others
-- within about two seconds instead of at the next full reload. Rows without a budget are
-- never asked for and keep NULL, so their spend updates still touch no index (HOT updates).
ALTER TABLE virtual_keys ADD COLUMN spend_changed_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN spend_changed_at TIMESTAMPTZ;
ALTER TABLE teams ADD COLUMN spend_changed_at TIMESTAMPTZ;

CREATE INDEX virtual_keys_spend_changed_at_idx ON virtual_keys (spend_changed_at)
    WHERE max_budget IS NOT NULL;
CREATE INDEX users_spend_changed_at_idx ON users (spend_changed_at)
    WHERE max_budget IS NOT NULL;
CREATE INDEX teams_spend_changed_at_idx ON teams (spend_changed_at)
    WHERE max_budget IS NOT NULL;
