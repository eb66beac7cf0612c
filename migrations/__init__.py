"""Alembic revisions of the library index, installed as ``queueemo.migrations``."""
