-- PostgreSQL twin of ../0005_crun_budget.sql.
-- One row per budget: every process takes its crun slots from it with one atomic UPDATE, on the
-- database's clock (see bot/store/budget.py).
CREATE TABLE crun_budget (
    name          TEXT PRIMARY KEY,
    next_at       DOUBLE PRECISION NOT NULL,  -- the earliest the next slot may be granted
    last_at       DOUBLE PRECISION NOT NULL,  -- when the latest slot granted may be used
    rate          DOUBLE PRECISION NOT NULL,  -- requests/s in force at slowed_until
    slowed_until  DOUBLE PRECISION NOT NULL   -- the end of the latest 429's pause
);
