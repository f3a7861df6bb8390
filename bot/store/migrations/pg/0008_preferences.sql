-- PostgreSQL twin of ../0008_preferences.sql.
CREATE TABLE preferences (
    user_id     BIGINT PRIMARY KEY,
    prefs_json  TEXT NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL
);
