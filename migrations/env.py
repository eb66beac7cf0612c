"""Alembic environment: run on the connection queueemo passes in, or on ``sqlalchemy.url``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

# Every module that defines tables, so autogenerate sees all of them (not only ``tracks``).
from queueemo.library import claims, history  # noqa: F401  (scan_workers, plays)
from queueemo.library.db import Base

target_metadata = Base.metadata


def _run(connection) -> None:
    # Batch mode lets later revisions alter SQLite tables (copy-and-move).
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = engine_from_config(
        context.config.get_section(context.config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as fresh:
        _run(fresh)


if context.is_offline_mode():
    raise SystemExit("queueemo migrations run online only")
run_migrations_online()
