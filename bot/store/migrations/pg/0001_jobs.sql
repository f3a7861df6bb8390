-- PostgreSQL twin of ../0001_jobs.sql: INTEGER is BIGINT (Discord ids need 64 bits), REAL is
-- DOUBLE PRECISION, AUTOINCREMENT is BIGSERIAL; flags stay integers (the SQL compares with 0/1).

-- Jobs are the durable unit of work: a row exists before anything is sent to crun.
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    user_id           BIGINT NOT NULL,
    guild_id          BIGINT,
    parent_job_id     TEXT REFERENCES jobs(id) ON DELETE SET NULL,
    request_json      TEXT NOT NULL,
    target_json       TEXT NOT NULL,
    target_kind       TEXT NOT NULL,
    status            TEXT NOT NULL,
    task_id           TEXT UNIQUE,
    callback_token    TEXT NOT NULL,
    input_json        TEXT,
    uploaded_json     TEXT NOT NULL DEFAULT '[]',
    result_urls_json  TEXT NOT NULL DEFAULT '[]',
    error_code        TEXT,
    error_message     TEXT,
    credits           DOUBLE PRECISION,
    created_at        DOUBLE PRECISION NOT NULL,
    create_sent_at    DOUBLE PRECISION,  -- set just before CreateTask goes out: never resend
    submitted_at      DOUBLE PRECISION,
    finished_at       DOUBLE PRECISION,
    not_before        DOUBLE PRECISION,  -- queued jobs wait until then (429 / maintenance)
    submit_attempts   BIGINT NOT NULL DEFAULT 0,
    next_poll_at      DOUBLE PRECISION,
    poll_count        BIGINT NOT NULL DEFAULT 0,
    not_found_count   BIGINT NOT NULL DEFAULT 0,
    slow_notified     BIGINT NOT NULL DEFAULT 0,
    delivery_state    TEXT NOT NULL DEFAULT 'none',
    delivery_attempts BIGINT NOT NULL DEFAULT 0,
    delivered_at      DOUBLE PRECISION,
    receipt_json      TEXT,
    owner             TEXT               -- the engine instance tracking this job (see instances)
);

-- Unfinished work is what a restart must find quickly.
CREATE INDEX jobs_unfinished ON jobs(delivery_state, status) WHERE delivery_state IN ('none', 'started');
CREATE INDEX jobs_user ON jobs(user_id, created_at);

-- An audit trail per job: what happened and when (shown by `wanbot check`, `/wan info`, logs).
CREATE TABLE job_events (
    id      BIGSERIAL PRIMARY KEY,
    job_id  TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    at      DOUBLE PRECISION NOT NULL,
    event   TEXT NOT NULL,
    detail  TEXT
);
CREATE INDEX job_events_job ON job_events(job_id, id);

-- Engine processes. A job owned by a live instance is not touched by another process
-- (e.g. `wanbot generate` while the bot runs); a dead owner's jobs are taken over at once.
CREATE TABLE instances (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    started_at    DOUBLE PRECISION NOT NULL,
    heartbeat_at  DOUBLE PRECISION NOT NULL
);
