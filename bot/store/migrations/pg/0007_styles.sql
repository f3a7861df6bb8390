-- PostgreSQL twin of ../0007_styles.sql.
CREATE TABLE styles (
    guild_id    BIGINT NOT NULL,
    name        TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_by  BIGINT NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, name)
);
