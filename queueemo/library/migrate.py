"""Alembic, driven from code: bring a database to this version's schema, or refuse a newer one.

The revisions live in ``migrations/`` at the top of the checkout and are installed as the package
``queueemo.migrations``; no ``alembic.ini`` is needed at run time.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from queueemo.errors import DatabaseError

log = logging.getLogger(__name__)


def migrations_dir() -> Path:
    """The folder holding ``env.py`` and ``versions/``: the installed package, else the checkout."""
    spec = importlib.util.find_spec("queueemo.migrations")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config pointing at the shipped revisions (and at ``connection`` if given)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def schema_revisions(connection: sa.Connection) -> tuple[str, ...]:
    """The revisions recorded in the database (empty for a new file)."""
    return tuple(MigrationContext.configure(connection).get_current_heads())


def ensure_schema(engine: sa.Engine, *, upgrade: bool = True) -> None:
    """Upgrade ``engine``'s database to head; ``DatabaseError`` if it is newer than this code."""
    where = engine.url.database or str(engine.url)
    with engine.begin() as connection:
        config = alembic_config(connection)
        script = ScriptDirectory.from_config(config)
        current = schema_revisions(connection)
        for revision in current:
            try:
                script.get_revision(revision)
            except CommandError:
                raise DatabaseError(
                    f"database {where} has schema revision {revision!r}, written by a newer "
                    "queueemo; upgrade queueemo or pass another --db"
                ) from None
        heads = set(script.get_heads())
        if set(current) == heads:
            return
        if not upgrade:
            raise DatabaseError(f"database {where} needs a schema upgrade; run `queueemo scan` first")
        log.info("upgrading database %s from %s to %s", where, current or "empty", sorted(heads))
        command.upgrade(config, "heads")
