"""The library index: SQLAlchemy models, opening a database (migrating it) and the session scope.

This is the only module that commits. ``open_library(url)`` returns a ``Library`` whose ``session()``
context manager commits on success, rolls back on error and turns every SQLAlchemy/sqlite error into
one ``DatabaseError`` line. SQLite runs in WAL mode with a busy timeout, so the daemon can read while
a scan writes, and a ``kill -9`` loses at most the transaction in flight.

Paths are stored as the raw bytes the file system gave us (``os.fsencode``) and come back as ``str``
with ``surrogateescape`` (``os.fsdecode``): every POSIX name round-trips exactly, including invalid
UTF-8 and newlines, which a TEXT column cannot hold. UTF-8 names are stored as their UTF-8 bytes, so
``SELECT CAST(path AS TEXT)`` shows them in the sqlite3 shell.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from queueemo.errors import DatabaseError
from queueemo.library.migrate import OWN_DATABASE
from queueemo.library.roots import Roots
from queueemo.library.summary import CONNECT_TIMEOUT_S

if TYPE_CHECKING:
    from queueemo.config import LibrarySettings

log = logging.getLogger(__name__)

# How long a writer waits for another writer before "database is locked".
BUSY_TIMEOUT_S = 30.0
# How long waiting for another process's database lock goes unmentioned (it is normally held briefly).
LOCK_QUIET_S = 10.0
# Trajectories are (n, 2) arrays of (arousal, valence) in −1..1 at 2 Hz; float16 keeps 3 significant
# digits in 4 bytes per window (a 5-minute track takes 2.4 KB).
TRAJECTORY_DTYPE = np.dtype("<f2")

STATUS_PENDING = "pending"  # found, not analysed yet (or changed since)
STATUS_OK = "ok"
STATUS_FAILED = "failed"  # not decodable: not retried until its size or mtime changes


# The root names of the Library whose session is running (see roots.py); None: no named roots.
_ROOTS: ContextVar[Roots | None] = ContextVar("queueemo_roots", default=None)


def current_roots() -> Roots | None:
    """The named roots paths are mapped through in the running session (``None``: none named)."""
    return _ROOTS.get()


class FsPath(sa.types.TypeDecorator[str]):
    """A file-system path kept as its exact bytes (see the module docstring).

    Under a named root it is stored as ``name:/rel`` and read back through this machine's mapping.
    """

    impl = sa.LargeBinary
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> bytes | None:
        if value is None:
            return None
        roots = _ROOTS.get()
        return os.fsencode(roots.stored(value) if roots else value)

    def process_result_value(self, value: bytes | None, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        roots = _ROOTS.get()
        path = os.fsdecode(bytes(value))
        return roots.local(path) if roots else path


class Base(DeclarativeBase):
    """Declarative base of every queueemo table (other modules add theirs to its metadata)."""

    # float columns are FLOAT, as in the migrations (SQLAlchemy 2.1 would make them DOUBLE)
    type_annotation_map: ClassVar[dict[type, Any]] = {float: sa.Float}


class Track(Base):
    """One audio file under a music root, with its tags and (once analysed) its emotion."""

    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(FsPath)  # absolute, as found (symlinks kept); unique
    root: Mapped[str] = mapped_column(FsPath)  # the scanned folder it was found under
    rel_path: Mapped[str] = mapped_column(FsPath)  # path relative to root
    size: Mapped[int] = mapped_column(sa.BigInteger)
    mtime_ns: Mapped[int] = mapped_column(sa.BigInteger)
    content_hash: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    duration_s: Mapped[float | None]
    artist: Mapped[str | None] = mapped_column(sa.Text)
    albumartist: Mapped[str | None] = mapped_column(sa.Text)
    album: Mapped[str | None] = mapped_column(sa.Text)
    title: Mapped[str | None] = mapped_column(sa.Text)
    genre: Mapped[str | None] = mapped_column(sa.Text)
    tracknumber: Mapped[int | None]
    status: Mapped[str] = mapped_column(sa.String(8), index=True, default=STATUS_PENDING)
    error: Mapped[str | None] = mapped_column(sa.Text)
    model_version: Mapped[str | None] = mapped_column(sa.String(64))
    analysed_at: Mapped[datetime | None]  # naive UTC
    trajectory: Mapped[bytes | None] = mapped_column(sa.LargeBinary)  # TRAJECTORY_DTYPE, (n, 2)
    opening_arousal: Mapped[float | None]
    opening_valence: Mapped[float | None]
    closing_arousal: Mapped[float | None]
    closing_valence: Mapped[float | None]
    mean_arousal: Mapped[float | None]
    mean_valence: Mapped[float | None]
    # The decoder (name and version) of the last analysis attempt: a failed file is retried when it changes.
    decoder: Mapped[str | None] = mapped_column(sa.String(64))
    # Audible boundaries (seconds from the start): where sound begins and where the ending (fade-out
    # or final decay) begins; "opening" and "closing" are measured inside them.
    sound_start_s: Mapped[float | None]
    ending_start_s: Mapped[float | None]
    # Boundary acoustics: integrated loudness (LUFS) and brightness (spectral centroid, Hz) of the
    # opening and of the ending.
    opening_lufs: Mapped[float | None]
    ending_lufs: Mapped[float | None]
    opening_brightness: Mapped[float | None]
    ending_brightness: Mapped[float | None]
    # Onset density (onsets per second) of the opening and of the ending; NULL: analysed before
    # migration 0006 (the next scan analyses such tracks again).
    opening_onsets: Mapped[float | None]
    ending_onsets: Mapped[float | None]
    # ``scan --worker``: who is analysing this pending track, and until when (naive UTC) the claim
    # holds; an expired lease (a dead worker) lets another worker claim the track.
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    lease_until: Mapped[datetime | None]

    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'ok', 'failed')", name="ck_tracks_status"),
        sa.UniqueConstraint("path", name="uq_tracks_path"),
        sa.Index("ix_tracks_opening", "opening_arousal", "opening_valence"),
        sa.Index("ix_tracks_closing", "closing_arousal", "closing_valence"),
        sa.Index("ix_tracks_status_summary", "status", "model_version", "duration_s"),  # for status
    )

    def __repr__(self) -> str:
        return f"Track(id={self.id}, path={self.path!r}, status={self.status!r})"


class TrackChange(Base):
    """A change the picker must see: a track became, stopped being or changed as a candidate.

    Written by database triggers (migration 0005), so every writer counts, on any machine. ``seq``
    only grows; readers remember the last one they applied (see ``library/candidates.py``).
    """

    __tablename__ = "track_changes"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012  (a seq is never reused)

    seq: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    track_id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"))


def encode_trajectory(trajectory: np.ndarray) -> bytes:
    """(n, 2) arousal/valence array → compact blob."""
    return np.ascontiguousarray(trajectory, dtype=TRAJECTORY_DTYPE).tobytes()


def decode_trajectory(blob: bytes | None) -> np.ndarray:
    """Blob → (n, 2) float32 array (empty when the track has no analysis)."""
    if not blob:
        return np.zeros((0, 2), dtype=np.float32)
    return np.frombuffer(blob, dtype=TRAJECTORY_DTYPE).reshape(-1, 2).astype(np.float32)


def _describe(url: sa.URL) -> str:
    return url.database if url.get_backend_name() == "sqlite" and url.database else str(url)


def explain(error: BaseException, where: str, dialect: str = "sqlite") -> str:
    """One line saying what went wrong with the database at ``where`` and what to do.

    The one dialect-aware edge: SQLite errors are told apart by their text, PostgreSQL's by SQLSTATE.
    """
    original = getattr(error, "orig", None) or error
    text = " ".join(str(original).split()) or type(original).__name__
    if dialect == "postgresql":
        text = re.sub(r"\s*LINE \d+: .*?\^", "", text)  # the statement quoted back: no help to a user
        return _explain_postgresql(getattr(original, "sqlstate", None) or "", text, where)
    lowered = text.lower()
    if "already exists" in lowered:  # creating the index where another application's tables are
        return f"database {where}: {text}, not created by queueemo; {OWN_DATABASE}"
    if "locked" in lowered or "busy" in lowered:
        return (f"database {where} is locked by another process (waited {BUSY_TIMEOUT_S:.0f} s); "
                "try again when the other scan has finished")
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return (f"{where} is not a usable queueemo database ({text}); "
                "move it away to start a new index, or pass another --db")
    if "readonly" in lowered or "read-only" in lowered:  # the file, its folder (WAL) or the disk
        return f"cannot write to database {where} ({text}); check that the file and its folder are writable"
    if "unable to open" in lowered:
        return f"cannot open database {where} ({text}); check that its folder exists and is writable"
    if "disk is full" in lowered:
        return (f"database {where}: the disk is full ({text}); free some space and run the command "
                "again (what was already stored is kept)")
    return f"database {where}: {text}"


def is_transient(error: DatabaseError) -> bool:
    """Whether ``error`` came from losing the server (restart, network): worth retrying later."""
    cause = error.__cause__
    return isinstance(cause, exc.OperationalError) or (
        isinstance(cause, exc.DBAPIError) and cause.connection_invalidated
    )


def server_unreachable(error: DatabaseError) -> bool:
    """Whether ``error`` is a connection no server accepted yet (not running, not reachable,
    starting up): worth starting again later, unlike a server refusing the login or database."""
    if not is_transient(error):
        return False
    text = str(getattr(error.__cause__, "orig", None) or error.__cause__)
    if "password" in text or "fe_sendauth" in text:  # a login the client could not even attempt
        return False
    return "FATAL" not in text or "starting up" in text or "shutting down" in text


def _explain_postgresql(sqlstate: str, text: str, where: str) -> str:
    if sqlstate in ("28P01", "28000") or "authentication failed" in text or "no password" in text:
        return (f"cannot log in to {where} ({text}); check the user and its password "
                "(password_file in [library], ~/.pgpass or PGPASSFILE)")
    if sqlstate == "3D000" or ("FATAL" in text and "database" in text and "does not exist" in text):
        return f"database {where} does not exist ({text}); create it (createdb) or pass another --db"
    if sqlstate == "42P07":  # duplicate table: creating the index where another application's tables are
        return f"database {where}: {text}, not created by queueemo; {OWN_DATABASE}"
    if sqlstate == "42501":  # insufficient privilege: a read-only role, or one that may not create
        user = sa.make_url(where).username or "your role"
        grant = (f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {user} and "
                 f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {user}")
        if "for schema" in text or "must be owner" in text:  # creating or upgrading the tables
            return (f"database {where}: {text}: {user} may not create or change the index's tables; run "
                    f"`queueemo status` once as the role that owns the database (it creates or upgrades "
                    f"them), then {grant}")
        return (f"database {where}: {text}: {user} lacks the privilege; {grant}, or use the database "
                "owner's role")
    if sqlstate == "25006":  # read-only transaction: a standby, or default_transaction_read_only
        return (f"database {where} takes no writes ({text}): a standby or a read-only database; point "
                "--db at the primary server")
    if sqlstate.startswith("57P") or "closed the connection" in text or "shutting down" in text:
        return f"lost the connection to {where} ({text}): the server stopped or restarted"
    if sqlstate in ("40001", "40P01", "55P03"):
        return f"database {where} is busy ({text}); try again"
    if not sqlstate:  # no answer from a server at all
        return f"cannot connect to {where} ({text}); check that the server runs and the URL"
    return f"database {where}: {text}"


class Library:
    """An open index: an engine plus sessions that commit in one place.

    ``roots``: this machine's named roots; paths in its sessions are mapped through them.
    """

    def __init__(self, engine: sa.Engine, roots: Roots | None = None) -> None:
        self.engine = engine
        self.roots = roots or Roots()
        self.where = _describe(engine.url)
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises.

        Any SQLAlchemy error inside the block (also from reads) becomes a ``DatabaseError``.
        """
        session = self._sessions()
        token = _ROOTS.set(self.roots if self.roots.mounts else None)
        try:
            yield session
            session.commit()
        except exc.SQLAlchemyError as error:
            session.rollback()
            raise DatabaseError(explain(error, self.where, self.engine.dialect.name)) from error
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            _ROOTS.reset(token)

    def ping(self) -> None:
        """One round trip to the database: ``DatabaseError`` if it does not answer (e.g. restarting)."""
        with self.session() as session:
            session.execute(sa.text("SELECT 1"))

    @property
    def served(self) -> bool:
        """Whether the index lives on a database server (which can go away and come back)."""
        return self.engine.dialect.name != "sqlite"

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound file (SQLite only)."""
        try:
            with self.engine.connect() as connection:
                rows = connection.exec_driver_sql("PRAGMA integrity_check").scalars().all()
        except exc.SQLAlchemyError as error:
            raise DatabaseError(explain(error, self.where, self.engine.dialect.name)) from error
        return "; ".join(str(row) for row in rows)

    @contextmanager
    def exclusive(self, key: int, holder: str = "") -> Iterator[None]:
        """Hold a database-wide lock ``key`` while the block runs, across transactions.

        A PostgreSQL advisory lock (every machine sharing the server waits for it); SQLite already
        lets one writer at a time in, so there it holds nothing. ``holder`` names this process to the
        others: one waiting says, once, whom it waits for (a holder stopped or suspended mid-way
        keeps the lock until its connection ends, and the others waited without a word).
        """
        if self.engine.dialect.name != "postgresql":
            yield
            return
        try:
            connection = self.engine.connect()
            if holder:
                connection.execute(sa.text("SELECT set_config('application_name', :holder, false)"),
                                   {"holder": holder})
            if not self._try_lock(connection, key, LOCK_QUIET_S):
                log.warning("waiting for %s, which holds this index's lock; a process stopped while "
                            "holding it keeps it until its connection ends",
                            self._lock_holder(connection, key))
                connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
        except exc.SQLAlchemyError as error:
            raise DatabaseError(explain(error, self.where, self.engine.dialect.name)) from error
        try:
            yield
        finally:
            with contextlib.suppress(exc.SQLAlchemyError):  # a lost connection released it already
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
            connection.close()

    @staticmethod
    def _try_lock(connection: sa.Connection, key: int, for_s: float) -> bool:
        """Try for ``for_s`` seconds to take advisory lock ``key`` (others hold it only briefly)."""
        deadline = time.monotonic() + for_s
        while not connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    @staticmethod
    def _lock_holder(connection: sa.Connection, key: int) -> str:
        """Who holds advisory lock ``key``: its name (``holder``) and since when it is connected."""
        row = connection.execute(sa.text(
            "SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = :high AND l.objid = :low AND l.objsubid = 1"),
            {"high": key >> 32, "low": key & 0xFFFFFFFF}).first()
        if row is None:
            return "another process"
        name = row.application_name or f"a process at {row.client_addr or 'the server'}"
        if row.backend_start is None:  # another role's session, without pg_read_all_stats
            return name
        return f"{name} (connected since {row.backend_start:%Y-%m-%d %H:%M:%S %Z})"

    def close(self) -> None:
        """Release the connections (the WAL is checkpointed by the last one to close)."""
        self.engine.dispose()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL survives an application crash; only power loss may drop the last commits.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def read_password(password_file: str) -> str:
    """The first line of ``password_file`` (so the password need not sit in a URL or unit file)."""
    path = Path(password_file).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatabaseError(f"cannot read the database password file {path}: {error}") from error
    if not lines or not lines[0].strip():
        raise DatabaseError(f"the database password file {path} is empty")
    return lines[0].strip()


def create_engine(url: str, *, password_file: str = "", create: bool = True) -> sa.Engine:
    """An engine for ``url``; SQLite files get their folder created, WAL and a busy timeout.

    ``password_file`` (a server database) replaces the URL's password with the file's first line;
    without either, libpq's ``~/.pgpass``/``PGPASSFILE`` apply. The password is never shown: the
    engine's URL renders it as ``***`` and statement parameters are left out of errors.
    """
    try:
        parsed = sa.make_url(url)
    except exc.ArgumentError:
        raise DatabaseError(
            f"invalid database URL {url.split('@')[-1]!r}: expected sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DATABASE"
        ) from None
    if password_file:
        parsed = parsed.set(password=read_password(password_file))
    if parsed.get_backend_name() != "sqlite":
        # A server that accepts the connection but never answers (or a firewall dropping packets)
        # hung every command, the daemon and the worker's retries with it, for good.
        timeout = {"connect_timeout": CONNECT_TIMEOUT_S} \
            if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query else {}
        try:
            return sa.create_engine(parsed, pool_pre_ping=True, hide_parameters=True, connect_args=timeout)
        except (exc.NoSuchModuleError, ImportError) as error:  # another server, or a typo in the scheme
            if isinstance(error, ImportError) and parsed.drivername in ("postgresql", "postgresql+psycopg"):
                raise DatabaseError(f"cannot use {parsed.render_as_string()!r}: psycopg is not installed "
                                    f"({error}); pip install 'queueemo[postgres]'") from None
            raise DatabaseError(
                f"cannot use database URL {parsed.render_as_string()!r} ({error}): expected sqlite:///PATH "
                "or postgresql+psycopg://USER@HOST/DATABASE"
            ) from None
    if parsed.database and parsed.database != ":memory:":
        database = Path(parsed.database).expanduser()
        parsed = parsed.set(database=str(database))  # SQLite itself would look for a folder named ~
        if not create and not database.exists():
            raise DatabaseError(f"no index at {database}: run `queueemo scan` first "
                                "(or check --db, QUEUEEMO_DB, [library] database_url)")
        if database.is_dir():
            raise DatabaseError(f"{database} is a folder, not a database file; pass a file in it, "
                                f"e.g. sqlite:///{database / 'library.sqlite3'}")
        folder = database.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatabaseError(f"cannot create the database folder {folder}: {error}") from error
    engine = sa.create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def open_library(url: str, *, migrate: bool = True, password_file: str = "",
                 roots: Roots | None = None, create: bool = True) -> Library:
    """Open the index at ``url``, creating it (unless ``create`` is False: then a missing SQLite
    file is a ``DatabaseError``) or upgrading its schema to this version's.

    Raises ``DatabaseError`` when the file is not a database, is locked, or was written by a newer
    queueemo. ``migrate=False`` only checks that the schema is current (for read-only tools).
    ``password_file``: see ``create_engine``. ``roots``: this machine's named roots; tracks stored
    under their absolute path inside a named root are renamed to the root's name (once).
    """
    from queueemo.library.migrate import ensure_schema

    engine = create_engine(url, password_file=password_file, create=create)
    try:
        ensure_schema(engine, upgrade=migrate)
    except exc.SQLAlchemyError as error:
        engine.dispose()
        raise DatabaseError(explain(error, _describe(engine.url), engine.dialect.name)) from error
    except BaseException:
        engine.dispose()
        raise
    library = Library(engine, roots)
    if migrate and library.roots.mounts:
        from queueemo.library.roots import adopt_named_roots

        adopt_named_roots(library)
    log.debug("opened library %s", _describe(engine.url))
    return library


def open_configured(url: str, settings: LibrarySettings, *, migrate: bool = True,
                    create: bool = True) -> Library:
    """``open_library`` with the ``[library]`` section's password file and named roots."""
    return open_library(url, migrate=migrate, password_file=settings.password_file,
                        roots=Roots.parse(settings.root_names), create=create)
