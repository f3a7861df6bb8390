-- PostgreSQL twin of ../0004_ledger_indexes.sql.
-- Running-job counts are taken on every reservation: index exactly those rows.
CREATE INDEX ledger_reserved_user ON ledger(user_id) WHERE state = 'reserved';
CREATE INDEX ledger_reserved_guild ON ledger(guild_id) WHERE state = 'reserved';
