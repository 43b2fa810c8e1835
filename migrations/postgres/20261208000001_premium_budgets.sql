-- Copilot premium requests as a budget: a limit per period on the premium units a key, user
-- or team may spend (a request costs its model's premium multiplier), the units spent in the
-- current period, and when that period ends. Without a duration the period is the calendar
-- month in UTC, the period Copilot's own allowance resets on. Every row has a period, budget
-- or not, so what it shows as used is always this period's.
ALTER TABLE virtual_keys ADD COLUMN max_premium_requests DOUBLE PRECISION;
ALTER TABLE virtual_keys ADD COLUMN premium_budget_duration TEXT;
ALTER TABLE virtual_keys ADD COLUMN premium_spend DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE virtual_keys ADD COLUMN premium_budget_reset_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN max_premium_requests DOUBLE PRECISION;
ALTER TABLE users ADD COLUMN premium_budget_duration TEXT;
ALTER TABLE users ADD COLUMN premium_spend DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN premium_budget_reset_at TIMESTAMPTZ;
ALTER TABLE teams ADD COLUMN max_premium_requests DOUBLE PRECISION;
ALTER TABLE teams ADD COLUMN premium_budget_duration TEXT;
ALTER TABLE teams ADD COLUMN premium_spend DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN premium_budget_reset_at TIMESTAMPTZ;

-- The period of every existing row ends with this month.
UPDATE virtual_keys SET premium_budget_reset_at = date_trunc('month', now(), 'UTC') + INTERVAL '1 month';
UPDATE users SET premium_budget_reset_at = date_trunc('month', now(), 'UTC') + INTERVAL '1 month';
UPDATE teams SET premium_budget_reset_at = date_trunc('month', now(), 'UTC') + INTERVAL '1 month';

CREATE INDEX virtual_keys_premium_budget_reset_at_idx ON virtual_keys (premium_budget_reset_at)
    WHERE premium_budget_reset_at IS NOT NULL;
CREATE INDEX users_premium_budget_reset_at_idx ON users (premium_budget_reset_at)
    WHERE premium_budget_reset_at IS NOT NULL;
CREATE INDEX teams_premium_budget_reset_at_idx ON teams (premium_budget_reset_at)
    WHERE premium_budget_reset_at IS NOT NULL;

-- Rows with either budget are the ones other processes poll for changed spend.
DROP INDEX virtual_keys_spend_changed_at_idx;
DROP INDEX users_spend_changed_at_idx;
DROP INDEX teams_spend_changed_at_idx;
CREATE INDEX virtual_keys_spend_changed_at_idx ON virtual_keys (spend_changed_at)
    WHERE max_budget IS NOT NULL OR max_premium_requests IS NOT NULL;
CREATE INDEX users_spend_changed_at_idx ON users (spend_changed_at)
    WHERE max_budget IS NOT NULL OR max_premium_requests IS NOT NULL;
CREATE INDEX teams_spend_changed_at_idx ON teams (spend_changed_at)
    WHERE max_budget IS NOT NULL OR max_premium_requests IS NOT NULL;
