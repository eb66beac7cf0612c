"""Alembic, driven from code: bring a database to this version's schema, or refuse a newer one.

The revisions live in ``migrations/`` at the top of the checkout and are installed as the package
``queueemo.migrations``; no ``alembic.ini`` is needed at run time.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from queueemo.errors import DatabaseError

if TYPE_CHECKING:
    import sqlalchemy as sa
    from alembic.config import Config

log = logging.getLogger(__name__)

# The newest revision in migrations/versions (a test keeps it equal to Alembic's head). A database
# already at it is recognised with one query, without importing Alembic or parsing the revisions:
# that keeps `queueemo next` and `status` quick to start.
SCHEMA_HEAD = "0006_onset_boundary_onsets"
# queueemo's revisions are named NNNN_what; another application's Alembic revisions are not.
_OURS = re.compile(r"\d{4}_\w+")
OWN_DATABASE = ("give queueemo its own database (a new file; on PostgreSQL, createdb queueemo) "
                "or pass another --db")
# PostgreSQL advisory lock key held by the transaction that migrates (see ``_migrating_alone``).
_MIGRATE_LOCK = 0x71756d67


def migrations_dir() -> Path:
    """The folder holding ``env.py`` and ``versions/``: the installed package, else the checkout."""
    spec = importlib.util.find_spec("queueemo.migrations")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config pointing at the shipped revisions (and at ``connection`` if given)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def schema_revisions(connection: sa.Connection) -> tuple[str, ...]:
    """The revisions recorded in the database (empty for a new file)."""
    from alembic.runtime.migration import MigrationContext

    return tuple(MigrationContext.configure(connection).get_current_heads())


def _recorded_revisions(engine: sa.Engine) -> tuple[str, ...]:
    """The revisions in ``alembic_version``, read directly (empty when the table does not exist)."""
    import sqlalchemy as sa

    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return ()
        return tuple(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


@contextmanager
def _migrating_alone(connection: sa.Connection, upgrade: bool) -> Iterator[None]:
    """Make the migration on ``connection`` one transaction that a second process waits for, then
    finds done (only checking the schema takes no lock).

    SQLite: Python's sqlite3 runs DDL outside any transaction until the first INSERT/UPDATE, so a scan
    killed while creating or upgrading the index left tables or columns without their revision, and
    every later open failed ("table tracks already exists", "duplicate column name"); ``BEGIN
    IMMEDIATE`` makes it one transaction and takes the write lock. PostgreSQL: two workers started
    together on an empty database both created the tables and all but one failed ("duplicate key value
    violates unique constraint pg_type_typname_nsp_index"); a transaction-scoped advisory lock, which
    ends with the migration's commit or rollback, serialises them.
    """
    import sqlalchemy as sa

    if upgrade and connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK})
    if not upgrade or connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    default = driver.isolation_level
    driver.isolation_level = None  # no implicit BEGIN/COMMIT: the transaction below is ours
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield  # ``engine.begin()`` commits it, or rolls it back
    finally:
        driver.isolation_level = default  # for the pooled connection's next user (commits nothing)


def ensure_schema(engine: sa.Engine, *, upgrade: bool = True) -> None:
    """Upgrade ``engine``'s database to head; ``DatabaseError`` if it is newer than this code."""
    where = engine.url.database or str(engine.url)
    if _recorded_revisions(engine) == (SCHEMA_HEAD,):
        return
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    with engine.begin() as connection, _migrating_alone(connection, upgrade):
        config = alembic_config(connection)
        script = ScriptDirectory.from_config(config)
        current = schema_revisions(connection)
        for revision in current:
            try:
                script.get_revision(revision)
            except CommandError:
                if not _OURS.fullmatch(revision):
                    raise DatabaseError(
                        f"database {where} holds another application's schema (Alembic revision "
                        f"{revision!r}); {OWN_DATABASE}"
                    ) from None
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
