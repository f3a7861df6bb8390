-- Server styles (/wan-admin style): named texts a server's admins define; a member who picks one
-- gets its text appended to the prompt. At most 25 per server (bot/domain/styles.py). Server
-- data, not a member's: /wan-admin forget leaves it alone.
CREATE TABLE styles (
    guild_id    INTEGER NOT NULL,
    name        TEXT NOT NULL,      -- lower case, single-spaced: how members pick it
    text        TEXT NOT NULL,      -- appended to the prompt as it is
    created_by  INTEGER NOT NULL,   -- the admin who last set it
    updated_at  REAL NOT NULL,
    PRIMARY KEY (guild_id, name)
);
