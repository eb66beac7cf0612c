"""Opening the index: migrations, refusal of newer or damaged files, SQLite settings, path storage."""

from __future__ import annotations

import inspect
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import queueemo.library
from queueemo.errors import DatabaseError
from queueemo.library import Library, Track, open_library
from queueemo.library.db import Base, create_engine
from queueemo.library.migrate import SCHEMA_HEAD, alembic_config, schema_revisions


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_public_namespace_is_complete() -> None:
    for name in queueemo.library.__all__:  # names load on first use
        getattr(queueemo.library, name)
    public = {
        name for name, value in vars(queueemo.library).items()
        if not name.startswith("_") and not inspect.ismodule(value)
        and name not in ("annotations", "importlib", "TYPE_CHECKING", "Any")
    }
    assert public == set(queueemo.library.__all__)


def test_new_database_is_created_at_head(db_url: str) -> None:
    lib = open_library(db_url)
    with lib.engine.connect() as connection:
        assert schema_revisions(connection) == (SCHEMA_HEAD,)
    lib.close()
    assert {"tracks", "plays"} <= _tables(db_url)


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(library: Library) -> None:
    with library.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


def test_migrations_match_the_models(library: Library) -> None:
    from queueemo.library import history  # noqa: F401  (its table belongs to the models too)

    assert {"tracks", "plays"} <= set(Base.metadata.tables)
    with library.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_alembic_autogenerate_proposes_nothing(library: Library, db_url: str) -> None:
    """``alembic check`` through migrations/env.py, in a fresh process (only what env.py imports)."""
    script = ("import sys; from alembic import command; from queueemo.library.migrate import alembic_config; "
              "config = alembic_config(); config.set_main_option('sqlalchemy.url', sys.argv[1]); "
              "command.check(config)")
    result = subprocess.run([sys.executable, "-c", script, db_url], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]


def test_database_at_first_revision_is_upgraded_keeping_tracks(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001_initial")
        connection.execute(sa.insert(Track.__table__).values(
            path=b"/m/a.flac", root=b"/m", rel_path=b"a.flac", size=1, mtime_ns=2, status="pending"))
    engine.dispose()
    lib = open_library(db_url)
    with lib.session() as session:
        assert [track.path for track in session.scalars(sa.select(Track))] == ["/m/a.flac"]
    heads = tuple(ScriptDirectory.from_config(alembic_config()).get_heads())
    with lib.engine.connect() as connection:
        assert schema_revisions(connection) == heads
    lib.close()


# Run in a child: bring the index to a revision (with one track), then open it with queueemo and die
# like ``kill -9`` right after the first statement containing the marker.
_DIE_MIGRATING = """
import os, sys
import sqlalchemy as sa
from alembic import command
from queueemo.library import Track, open_library
from queueemo.library.db import create_engine
from queueemo.library.migrate import alembic_config

url, start, marker = sys.argv[1:]
if start:
    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), start)
        connection.execute(sa.insert(Track.__table__).values(
            path=b"/m/a.flac", root=b"/m", rel_path=b"a.flac", size=1, mtime_ns=2, status="pending"))
    engine.dispose()

def die(connection, cursor, statement, *args):
    if marker in statement:
        os._exit(9)

sa.event.listen(sa.engine.Engine, "after_cursor_execute", die)
open_library(url)
"""


@pytest.mark.parametrize(("start", "marker", "tracks"), [
    ("", "CREATE INDEX", 0),  # creating a new index: after CREATE TABLE tracks
    ("0002_play_history", "ADD COLUMN sound_start_s", 1),  # upgrading: one column of 0003 added
])
def test_scan_killed_while_migrating_leaves_an_index_that_opens(db_url: str, start: str, marker: str,
                                                                 tracks: int) -> None:
    """SQLite ran schema changes outside the migration's transaction: a kill in between left tables or
    columns without their revision, and every later open failed ('duplicate column name: decoder')."""
    child = subprocess.run([sys.executable, "-c", _DIE_MIGRATING, db_url, start, marker],
                           capture_output=True, text=True)
    assert child.returncode == 9, child.stderr
    lib = open_library(db_url)
    try:
        with lib.engine.connect() as connection:
            assert schema_revisions(connection) == (SCHEMA_HEAD,)
        with lib.session() as session:
            assert len(session.scalars(sa.select(Track)).all()) == tracks
            session.add(Track(path="/m/b.flac", root="/m", rel_path="b.flac", size=1, mtime_ns=1))
        with lib.session() as session:  # the migration's connection went back to ordinary commits
            assert len(session.scalars(sa.select(Track)).all()) == tracks + 1
    finally:
        lib.close()


# Run in a child: open the index; with a marker file, create it and pause once the first table exists.
_OPEN_SLOWLY = """
import sys, time
from pathlib import Path
import sqlalchemy as sa
from queueemo.library import open_library

url, marker = sys.argv[1:]

def pause(connection, cursor, statement, *args):
    if marker and statement.lstrip().startswith("CREATE TABLE") and not Path(marker).exists():
        Path(marker).touch()
        time.sleep(1.5)  # the second process arrives while this one is mid-migration

sa.event.listen(sa.engine.Engine, "after_cursor_execute", pause)
open_library(url).close()
"""


def test_processes_creating_the_schema_together_all_open_it(db_url: str, tmp_path: Path) -> None:
    """Two `scan --worker` started together on an empty PostgreSQL database both created the tables;
    the second failed ('duplicate key value violates unique constraint "pg_type_typname_nsp_index"')."""
    marker = tmp_path / "first-is-creating"
    first = subprocess.Popen([sys.executable, "-c", _OPEN_SLOWLY, db_url, str(marker)],
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-c", _OPEN_SLOWLY, db_url, ""], capture_output=True,
                            text=True, timeout=120)
    _, first_errors = first.communicate(timeout=120)
    assert marker.exists()
    assert (first.returncode, second.returncode) == (0, 0), (first_errors + second.stderr)[-400:]
    assert {"tracks", "plays"} <= _tables(db_url)


@pytest.mark.sqlite_only
def test_checking_an_old_schema_takes_no_write_lock(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read-only commands only check the schema: a writer elsewhere must not make them wait or fail."""
    monkeypatch.setattr("queueemo.library.db.BUSY_TIMEOUT_S", 0.1)
    engine = create_engine(db_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0002_play_history")
    engine.dispose()
    writer = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    writer.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseError, match="needs a schema upgrade"):
            open_library(db_url, migrate=False)
    finally:
        writer.rollback()
        writer.close()


def test_downgrade_to_empty_and_upgrade_again(library: Library, db_url: str) -> None:
    with library.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert "tracks" not in _tables(db_url)
    library.close()
    open_library(db_url).close()
    assert "tracks" in _tables(db_url)


def test_newer_database_is_refused_with_a_clear_message(library: Library, db_url: str) -> None:
    with library.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    library.close()
    with pytest.raises(DatabaseError, match="newer queueemo"):
        open_library(db_url)


@pytest.mark.parametrize(("tables", "expected"), [
    ("CREATE TABLE tracks (id INTEGER, name TEXT)", "tracks.* already exists, not created by queueemo"),
    ("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY); "
     "INSERT INTO alembic_version VALUES ('ae1027a6acf')", "another application's schema"),
])
def test_a_database_another_application_uses_is_refused_saying_so(db_url: str, tables: str,
                                                                  expected: str) -> None:
    """A foreign Alembic revision was called 'written by a newer queueemo; upgrade queueemo', and a
    foreign table only 'relation "tracks" already exists'."""
    engine = create_engine(db_url)
    with engine.begin() as connection:
        for statement in tables.split("; "):
            connection.exec_driver_sql(statement)
    engine.dispose()
    with pytest.raises(DatabaseError, match=expected) as caught:
        open_library(db_url)
    assert "give queueemo its own database" in str(caught.value)
    assert "newer queueemo" not in str(caught.value)


@pytest.mark.sqlite_only
def test_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.sqlite3"
    bogus.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(DatabaseError, match="not a usable queueemo database"):
        open_library(f"sqlite:///{bogus}")


@pytest.mark.sqlite_only
@pytest.mark.parametrize("url", ["mysql://me:hunter2@db/music", "nosuchdb://host/x"])
def test_a_database_queueemo_cannot_use_is_one_clear_error(url: str) -> None:
    """An unsupported server or a typo in the scheme used to end in a traceback (no MySQLdb module,
    no such SQLAlchemy dialect)."""
    with pytest.raises(DatabaseError, match=r"cannot use database URL .*expected sqlite:///PATH") as caught:
        open_library(url)
    assert "hunter2" not in str(caught.value)


@pytest.mark.sqlite_only
def test_locked_database_gives_a_one_line_error(library: Library, db_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("queueemo.library.db.BUSY_TIMEOUT_S", 0.1)
    other = open_library(db_url)
    holder = sqlite3.connect(library.engine.url.database)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with (pytest.raises(DatabaseError, match="locked by another process") as caught,
              other.session() as session):
            session.add(Track(path="/m/x.mp3", root="/m", rel_path="x.mp3", size=1, mtime_ns=1))
        assert "\n" not in str(caught.value)
    finally:
        holder.rollback()
        holder.close()
        other.close()


@pytest.mark.sqlite_only
def test_tilde_in_a_sqlite_url_is_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder was created under the home folder, but SQLite was asked for a literal ``~``."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    open_library("sqlite:///~/index/library.sqlite3").close()
    assert (tmp_path / "index" / "library.sqlite3").is_file()
    open_library("sqlite:///~/index/library.sqlite3", create=False).close()


@pytest.mark.sqlite_only
def test_a_folder_given_as_the_database_says_so(tmp_path: Path) -> None:
    """It said 'check that its folder exists and is writable', of a folder that was both."""
    with pytest.raises(DatabaseError, match="is a folder, not a database file") as caught:
        open_library(f"sqlite:///{tmp_path}")
    assert f"sqlite:///{tmp_path / 'library.sqlite3'}" in str(caught.value)


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("pragma", "expected"), [
    ("query_only = ON", "cannot write to database .* check that the file and its folder are writable"),
    ("max_page_count = 1", "the disk is full .* free some space"),
])
def test_a_database_that_cannot_be_written_says_why(library: Library, pragma: str, expected: str) -> None:
    """A read-only file was blamed on its folder; a full disk had no advice."""
    with pytest.raises(DatabaseError, match=expected), library.session() as session:
        session.execute(sa.text(f"PRAGMA {pragma}"))  # on the session's own connection
        session.add(Track(path="/m/x.mp3", root="/m", rel_path="x.mp3", size=1, mtime_ns=1,
                          trajectory=bytes(100_000)))


def test_any_file_name_round_trips(library: Library) -> None:
    names = ["/m/plain.flac", "/m/üñí©ødé.mp3", "/m/new\nline.ogg", "/m/latin1-\udce9t\udce9.mp3"]
    with library.session() as session:
        for name in names:
            session.add(Track(path=name, root="/m", rel_path=name[3:], size=1, mtime_ns=1))
    with library.session() as session:
        stored = session.scalars(sa.select(Track.path).order_by(Track.id)).all()
        assert stored == names
        assert session.scalars(sa.select(Track.id).where(Track.path == names[3])).one()


def test_fast_schema_check_knows_the_newest_revision() -> None:
    from alembic.script import ScriptDirectory

    from queueemo.library.migrate import SCHEMA_HEAD, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [SCHEMA_HEAD]


def test_no_sql_outside_the_library() -> None:
    """SQL, sqlite3 and PRAGMAs live behind queueemo/library/ (a second backend is configuration)."""
    package = Path(queueemo.library.__file__).resolve().parents[1]
    offenders = [
        f"{path.relative_to(package)}: {marker}"
        for path in package.rglob("*.py") if "library" not in path.relative_to(package).parts
        for marker in ("import sqlite3", "exec_driver_sql", "sa.text(", "PRAGMA", "cursor()")
        if marker in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
