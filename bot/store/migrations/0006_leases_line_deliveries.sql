-- Several processes on one database (PostgreSQL; SQLite runs the same schema in one process).
--
-- A job's lease: the owner instance tracks it until lease_until, and renews that while it runs.
-- A lease that lapses (the process died or stalled) lets another process take the job over.
ALTER TABLE jobs ADD COLUMN lease_until REAL;

-- Jobs waiting in the shared line, oldest first: what every claim reads.
CREATE INDEX jobs_waiting ON jobs(created_at) WHERE status = 'queued';

-- When each server (user_id = -1) and each member of a server was last served by the shared
-- line: the order of turns, decided in the database for every process alike.
CREATE TABLE line_marks (
    guild_id  INTEGER NOT NULL,   -- 0 for DMs and the terminal
    user_id   INTEGER NOT NULL,   -- -1 for the server's own turn
    seq       INTEGER NOT NULL,   -- larger is more recent
    PRIMARY KEY (guild_id, user_id)
);

-- One row per delivered job, written with delivery_state = 'done': a second delivery of the same
-- job cannot be recorded (the primary key), whichever process attempts it.
CREATE TABLE deliveries (
    job_id        TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    instance      TEXT NOT NULL,  -- the process that delivered it
    attempts      INTEGER NOT NULL,
    delivered_at  REAL NOT NULL
);
