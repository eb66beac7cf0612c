"""A scan killed with SIGKILL, and readers while a scan writes: the index stays sound and usable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from queueemo.library import (
    Library,
    ScanOptions,
    Track,
    library_status,
    load_candidates,
    open_library,
    scan,
)

pytestmark = pytest.mark.usefixtures("clip_model")


def _many(make_audio: Callable[..., Path], count: int, seconds: float) -> list[Path]:
    return [make_audio(f"music/{i:02d}.wav", seconds=seconds, freq=150 + 40 * i) for i in range(count)]


def _analysed(library: Library) -> dict[str, object]:
    with library.session() as session:
        rows = session.execute(sa.select(Track.path, Track.analysed_at).where(Track.status == "ok"))
        return dict(rows.all())


def _schema_exists(db_url: str) -> bool:
    if db_url.startswith("sqlite:///"):
        return Path(db_url.removeprefix("sqlite:///")).exists()
    engine = sa.create_engine(db_url)
    try:
        return sa.inspect(engine).has_table("tracks")
    finally:
        engine.dispose()


def _assert_intact(library: Library) -> None:
    """SQLite's integrity check; a PostgreSQL server keeps its own integrity (WAL), nothing to ask."""
    if library.engine.dialect.name == "sqlite":
        assert library.integrity_check() == "ok"


def test_killed_scan_resumes_without_redoing_finished_tracks(
    make_audio: Callable[..., Path], music: Path, db_url: str
) -> None:
    files = _many(make_audio, 16, seconds=2)
    command = [sys.executable, "-c", "from queueemo.cli import main; main()",
               "scan", str(music), "--jobs", "1", "--db", db_url]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    reader = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if reader is None and _schema_exists(db_url):
                time.sleep(0.5)  # let the child finish creating the schema
                reader = open_library(db_url)
            if reader is not None:
                with reader.session() as session:  # reading while the child writes
                    if library_status(session).analysed >= 3:
                        break
            time.sleep(0.02)
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        assert reader is not None, child.stderr.read().decode()
        finished = _analysed(reader)
        assert 3 <= len(finished) < len(files), "the scan was not caught mid-way"
        _assert_intact(reader)

        summary = scan(reader, [music], ScanOptions(jobs=1))
        assert summary.unchanged == len(finished)
        assert summary.analysed == len(files) - len(finished)
        after = _analysed(reader)
        assert len(after) == len(files)
        assert {path: after[path] for path in finished} == finished
        _assert_intact(reader)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.stderr.close()
        if reader is not None:
            reader.close()


def test_readers_are_not_locked_out_while_a_scan_writes(
    make_audio: Callable[..., Path], music: Path, library: Library, db_url: str
) -> None:
    _many(make_audio, 12, seconds=1)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            scan(library, [music], ScanOptions(jobs=1))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    writer = threading.Thread(target=run)
    reader = open_library(db_url)
    reads = 0
    writer.start()
    try:
        while writer.is_alive():
            with reader.session() as session:
                library_status(session)
                load_candidates(session)
            reads += 1
    finally:
        writer.join()
        reader.close()
    assert not errors
    assert reads > 10
    with library.session() as session:
        assert library_status(session).analysed == 12
