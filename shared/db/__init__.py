"""Persistence: SQLAlchemy models, engine and session, migrations."""
