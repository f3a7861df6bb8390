-- PostgreSQL twin of ../0002_meta.sql.
-- Small key/value facts about the installation (e.g. the hash of the last synced command tree).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
