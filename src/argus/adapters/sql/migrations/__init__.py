"""Alembic migrations: upgrade an existing database in place (run by ``open_database``)."""
