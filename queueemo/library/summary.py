"""``queueemo status`` straight over the driver: importing SQLAlchemy alone takes most of a cold status.

``quick_status`` gives what ``queries.library_status`` and ``claims.worker_status`` give, over sqlite3
or psycopg, for a database already at this version's schema. Anything unusual (another revision, a
URL form not handled here, any driver error) returns ``None``: the caller then takes the ordinary
path through SQLAlchemy, which migrates, maps roots and explains errors.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

log = logging.getLogger(__name__)

_SQLITE_FILE = re.compile(r"sqlite(\+pysqlite)?:///(?P<path>[^?]+)")
_POSTGRESQL = re.compile(r"postgresql\+psycopg://(?P<rest>.*)")
BUSY_TIMEOUT_MS = 30_000
# Seconds to wait for a database server to answer a new connection (libpq's default is forever);
# a URL's own ``?connect_timeout=N`` wins.
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class LibraryStatus:
    """Counts for ``queueemo status``. ``outdated`` tracks are analysed, but by another model."""

    total: int
    analysed: int
    pending: int
    failed: int
    outdated: int
    hours: float


@dataclass(frozen=True)
class WorkerStatus:
    """A worker's throughput, the claims it holds now and those whose lease ran out.

    An expired claim (its worker died or stalled) returns to the queue: the next worker to look
    claims it, and then it counts as that worker's.
    """

    name: str
    analysed: int
    failed: int
    per_minute: float
    claims: int
    last_seen: datetime
    expired: int = 0


def status_from_rows(rows: list[tuple[str, int, float | None, int | None]]) -> LibraryStatus:
    """``LibraryStatus`` from (status, count, summed duration, outdated count) rows."""
    counts = {status: count for status, count, _, _ in rows}
    ok = next((row for row in rows if row[0] == "ok"), None)
    return LibraryStatus(
        total=sum(counts.values()),
        analysed=counts.get("ok", 0),
        pending=counts.get("pending", 0),
        failed=counts.get("failed", 0),
        outdated=int(ok[3] or 0) if ok else 0,
        hours=float(ok[2] or 0.0) / 3600 if ok else 0.0,
    )


def quick_status(url: str, model_version: str | None, password_file: str = "",
                 ) -> tuple[LibraryStatus, list[WorkerStatus]] | None:
    """Counts and workers of the index at ``url``; ``None`` when this path cannot tell them."""
    from queueemo.library.migrate import SCHEMA_HEAD

    try:
        password = Path(password_file).expanduser().read_text(encoding="utf-8").split("\n")[0].strip() \
            if password_file else None
    except (OSError, UnicodeDecodeError):
        return None
    connect = _connector(url, password)
    if connect is None:
        return None
    try:
        connection = connect()
    except Exception as error:
        log.debug("quick status unavailable: %s", error)
        return None
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT version_num FROM alembic_version")
        if [row[0] for row in cursor.fetchall()] != [SCHEMA_HEAD]:
            return None
        return _counts(cursor, model_version, _placeholder(connection)), _workers(cursor, connection)
    except Exception as error:
        log.debug("quick status unavailable: %s", error)
        return None
    finally:
        connection.close()


def _connector(url: str, password: str | None) -> Callable[[], Any] | None:
    if match := _SQLITE_FILE.fullmatch(url):
        import sqlite3

        path = unquote(match["path"])
        if path == ":memory:":
            return None
        path = str(Path(path).expanduser())  # as db.create_engine does
        return lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    if match := _POSTGRESQL.fullmatch(url):
        try:
            import psycopg
        except ImportError:  # the ordinary path says how to install it
            return None

        extra: dict[str, Any] = {"password": password} if password else {}
        if "connect_timeout=" not in match["rest"]:
            extra["connect_timeout"] = CONNECT_TIMEOUT_S
        return lambda: psycopg.connect(f"postgresql://{match['rest']}", **extra)
    return None


def _placeholder(connection: Any) -> str:
    return "?" if type(connection).__module__.startswith("sqlite3") else "%s"


def _counts(cursor: Any, model_version: str | None, mark: str) -> LibraryStatus:
    """One pass over the covering index ``ix_tracks_status_summary``."""
    outdated = (f"SUM(CASE WHEN model_version IS NULL OR model_version <> {mark} THEN 1 ELSE 0 END)"
                if model_version is not None else "0")
    cursor.execute(f"SELECT status, COUNT(*), SUM(duration_s), {outdated} FROM tracks GROUP BY status",
                   (model_version,) if model_version is not None else ())
    return status_from_rows(cursor.fetchall())


def _workers(cursor: Any, connection: Any) -> list[WorkerStatus]:
    mark = _placeholder(connection)
    now = datetime.now(UTC).replace(tzinfo=None)
    sqlite = mark == "?"
    cursor.execute(f"SELECT claimed_by, SUM(CASE WHEN lease_until >= {mark} THEN 1 ELSE 0 END), COUNT(*) "
                   "FROM tracks WHERE claimed_by IS NOT NULL GROUP BY claimed_by",
                   (now.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else now,))
    held = {name: (int(live), total - int(live)) for name, live, total in cursor.fetchall()}
    cursor.execute("SELECT name, analysed, failed, started_at, last_seen FROM scan_workers "
                   "ORDER BY analysed DESC")
    lines = []
    for name, analysed, failed, started, seen in cursor.fetchall():
        if sqlite:  # SQLAlchemy stores DateTime there as ISO text
            started, seen = datetime.fromisoformat(started), datetime.fromisoformat(seen)
        lines.append(WorkerStatus(name, analysed, failed,
                                60 * (analysed + failed) / max((seen - started).total_seconds(), 1.0),
                                   held.get(name, (0, 0))[0], seen, held.get(name, (0, 0))[1]))
    return lines
