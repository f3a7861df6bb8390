-- The crun request budget shared by every process on one PostgreSQL database (see
-- bot/store/budget.py). A SQLite deployment is one process, whose limiter is in memory: the table
-- stays empty here and exists so that both engines keep one numbered list of migrations.
CREATE TABLE crun_budget (
    name          TEXT PRIMARY KEY,
    next_at       REAL NOT NULL,  -- the earliest the next slot may be granted (epoch seconds)
    last_at       REAL NOT NULL,  -- when the latest slot granted may be used
    rate          REAL NOT NULL,  -- requests/s in force at slowed_until (halved on a 429)
    slowed_until  REAL NOT NULL   -- the end of the latest 429's pause, where recovery starts
);
