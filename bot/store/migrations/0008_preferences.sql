-- Members' own defaults from /settings: one row per Discord user, the same in every server.
-- The preferences are one JSON document (bot/domain/preferences.py), so a new preference needs
-- no migration; /wan-admin forget deletes the row.
CREATE TABLE preferences (
    user_id     INTEGER PRIMARY KEY,
    prefs_json  TEXT NOT NULL,
    updated_at  REAL NOT NULL
);
