-- PostgreSQL twin of ../0003_quotas.sql.
-- Credits per job: reserved before CreateTask, then settled to the real cost or refunded, once.
-- No foreign key to jobs: usage history must survive the privacy purge of old prompts.
CREATE TABLE ledger (
    job_id      TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL,
    guild_id    BIGINT NOT NULL,            -- 0 for DMs
    reserved    DOUBLE PRECISION NOT NULL,
    charged     DOUBLE PRECISION,           -- the real cost once settled
    state       TEXT NOT NULL,              -- reserved | settled | refunded
    created_at  DOUBLE PRECISION NOT NULL,
    settled_at  DOUBLE PRECISION
);
CREATE INDEX ledger_user ON ledger(guild_id, user_id, created_at);
CREATE INDEX ledger_time ON ledger(created_at);

-- Limits in credits. scope 'guild' (subject 0) is the server default; 'role' and 'user'
-- override it. NULL means unlimited.
CREATE TABLE quota_limits (
    guild_id    BIGINT NOT NULL,
    scope       TEXT NOT NULL,
    subject_id  BIGINT NOT NULL,
    daily       DOUBLE PRECISION,
    monthly     DOUBLE PRECISION,
    PRIMARY KEY (guild_id, scope, subject_id)
);

-- Extra credits an admin granted a user for the current day or month.
CREATE TABLE quota_grants (
    id           BIGSERIAL PRIMARY KEY,
    guild_id     BIGINT NOT NULL,
    user_id      BIGINT NOT NULL,
    period       TEXT NOT NULL,             -- day | month
    credits      DOUBLE PRECISION NOT NULL,
    window_start DOUBLE PRECISION NOT NULL, -- the period it applies to
    granted_by   BIGINT,
    created_at   DOUBLE PRECISION NOT NULL
);
CREATE INDEX quota_grants_user ON quota_grants(guild_id, user_id, window_start);

-- A reset makes usage before reset_at not count.
CREATE TABLE quota_resets (
    guild_id    BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    reset_at    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE blocked_users (
    guild_id    BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    reason      TEXT,
    blocked_by  BIGINT,
    created_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

-- Per-server settings as one JSON document (guild 0 holds the bot-wide ones).
CREATE TABLE guild_config (
    guild_id    BIGINT PRIMARY KEY,
    config_json TEXT NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL
);
