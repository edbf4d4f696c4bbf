"""SQLAlchemy Core storage (SQLite by default, PostgreSQL by URL)."""
