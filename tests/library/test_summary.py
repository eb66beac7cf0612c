"""``status`` over the driver: the same counts and workers as through SQLAlchemy, without importing it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from queueemo.library import Library, Track, library_status, open_library
from queueemo.library.claims import ScanWorker, worker_status
from queueemo.library.summary import quick_status


def _fill(library: Library) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    with library.session() as session:
        for n, (status, version) in enumerate([("ok", "v2"), ("ok", "old"), ("ok", None), ("pending", None),
                                               ("failed", None)]):
            session.add(Track(path=f"/m/{n}.ogg", root="/m", rel_path=f"{n}.ogg", size=1, mtime_ns=1,
                              status=status, model_version=version, duration_s=60.0 * (n + 1)))
        session.add(Track(path="/m/claimed.ogg", root="/m", rel_path="claimed.ogg", size=1, mtime_ns=1,
                          status="pending", claimed_by="box-1", lease_until=now + timedelta(minutes=5)))
        session.add(ScanWorker(name="box-1", started_at=now - timedelta(minutes=2), last_seen=now,
                               analysed=10, failed=2))


def test_quick_status_equals_the_status_through_sqlalchemy(library: Library, db_url: str) -> None:
    _fill(library)
    quick = quick_status(db_url, "v2")
    assert quick is not None
    counts, workers = quick
    with library.session() as session:
        assert counts == library_status(session, "v2")
        (expected,) = worker_status(session)
    assert (counts.total, counts.analysed, counts.outdated, counts.hours) == (6, 3, 2, 0.1)
    (worker,) = workers
    assert (worker.name, worker.analysed, worker.failed, worker.claims) == ("box-1", 10, 2, 1)
    assert abs(worker.per_minute - expected.per_minute) < 1e-6 and worker.last_seen == expected.last_seen


def test_quick_status_reads_an_index_named_under_the_home_folder(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``sqlite:///~/...`` opens under the home folder; the quick path looked for a literal ``~``."""
    monkeypatch.setenv("HOME", str(tmp_path))
    with open_library("sqlite:///~/library.sqlite3") as library:
        _fill(library)
    quick = quick_status("sqlite:///~/library.sqlite3", "v2")
    assert quick is not None and quick[0].total == 6


def test_quick_status_leaves_what_it_cannot_read_to_the_ordinary_path(library: Library, db_url: str,
                                                                      tmp_path) -> None:
    assert quick_status(f"sqlite:///{tmp_path / 'missing.sqlite3'}", None) is None  # created by the other
    assert quick_status("sqlite://", None) is None
    assert quick_status(db_url, None, password_file=str(tmp_path / "no-such-file")) is None
    with library.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0004_scan_claims'")
    assert quick_status(db_url, None) is None  # an older schema: the ordinary path migrates it


def test_status_of_a_current_index_does_not_import_sqlalchemy(library: Library, db_url: str) -> None:
    _fill(library)
    script = ("import sys; from queueemo.cli import main; sys.argv[0] = 'queueemo'\n"
              "try: main()\nexcept SystemExit: pass\n"
              "print('sqlalchemy' in sys.modules, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script, "status", "--db", db_url], capture_output=True,
                            text=True)
    assert "analysed        3" in result.stdout and "worker box-1" in result.stdout
    assert result.stdout.splitlines()[-1] == "False False"
