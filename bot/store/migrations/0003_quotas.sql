-- Credits per job: reserved before CreateTask, then settled to the real cost or refunded, once.
-- No foreign key to jobs: usage history must survive the privacy purge of old prompts.
CREATE TABLE ledger (
    job_id      TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL,
    guild_id    INTEGER NOT NULL,   -- 0 for DMs
    reserved    REAL NOT NULL,
    charged     REAL,               -- the real cost once settled
    state       TEXT NOT NULL,      -- reserved | settled | refunded
    created_at  REAL NOT NULL,
    settled_at  REAL
);
CREATE INDEX ledger_user ON ledger(guild_id, user_id, created_at);
CREATE INDEX ledger_time ON ledger(created_at);

-- Limits in credits. scope 'guild' (subject 0) is the server default; 'role' and 'user'
-- override it. NULL means unlimited.
CREATE TABLE quota_limits (
    guild_id    INTEGER NOT NULL,
    scope       TEXT NOT NULL,
    subject_id  INTEGER NOT NULL,
    daily       REAL,
    monthly     REAL,
    PRIMARY KEY (guild_id, scope, subject_id)
);

-- Extra credits an admin granted a user for the current day or month.
CREATE TABLE quota_grants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    period      TEXT NOT NULL,      -- day | month
    credits     REAL NOT NULL,
    window_start REAL NOT NULL,     -- the period it applies to
    granted_by  INTEGER,
    created_at  REAL NOT NULL
);
CREATE INDEX quota_grants_user ON quota_grants(guild_id, user_id, window_start);

-- A reset makes usage before reset_at not count.
CREATE TABLE quota_resets (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    reset_at    REAL NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE blocked_users (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    reason      TEXT,
    blocked_by  INTEGER,
    created_at  REAL NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

-- Per-server settings as one JSON document (guild 0 holds the bot-wide ones).
CREATE TABLE guild_config (
    guild_id    INTEGER PRIMARY KEY,
    config_json TEXT NOT NULL,
    updated_at  REAL NOT NULL
);
