-- PostgreSQL twin of ../0006_leases_line_deliveries.sql.
ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION;

CREATE INDEX jobs_waiting ON jobs(created_at) WHERE status = 'queued';

CREATE TABLE line_marks (
    guild_id  BIGINT NOT NULL,
    user_id   BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE deliveries (
    job_id        TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    instance      TEXT NOT NULL,
    attempts      BIGINT NOT NULL,
    delivered_at  DOUBLE PRECISION NOT NULL
);
