"""The PostgreSQL twins of the SQLite migrations one folder up: same numbers, same names, same
tables (bot/store/pg_migrations.py applies them; a test holds the two lists together)."""
