"""A scan killed with SIGKILL, and readers while a scan writes: the index stays sound and usable."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from queueemo.errors import DatabaseError
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


def _reader_once_created(db_url: str) -> Library | None:
    """The index opened without migrating, once the scan has finished creating its schema."""
    try:
        return open_library(db_url, migrate=False)
    except DatabaseError:  # still being created: two processes must not both create it
        return None


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
                reader = _reader_once_created(db_url)
            if reader is not None:
                with reader.session() as session:  # reading while the child writes
                    if library_status(session).analysed >= 3:
                        break
            time.sleep(0.02)
        assert child.poll() is None, f"the scan ended first: {child.stderr.read().decode()}"
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


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _workers_of(pid: int) -> list[int]:
    """The analysis workers of a scan: forked by its forkserver child (or spawned children)."""
    found = []
    for kid in _children(pid):
        if b"forkserver" in _command_line(kid):
            found += _children(kid)  # the workers, forked from the server: same command line
        elif b"spawn_main" in _command_line(kid):
            found.append(kid)
    return found


def _has_torch(pid: int) -> bool:
    try:
        return b"libtorch" in Path(f"/proc/{pid}/maps").read_bytes()
    except OSError:
        return False


def _start_scan_with_workers(music: Path, db_url: str) -> tuple[subprocess.Popen[bytes], list[int]]:
    """A ``queueemo scan --jobs 2`` child, once its worker processes are analysing."""
    command = [sys.executable, "-c", "from queueemo.cli import main; main()",
               "scan", str(music), "--jobs", "2", "--db", db_url]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and child.poll() is None and len(workers) < 2:
        workers = _workers_of(child.pid)
        time.sleep(0.05)
    assert len(workers) == 2, "the scan did not start two workers"
    while time.monotonic() < deadline and not all(map(_has_torch, workers)):
        time.sleep(0.1)  # torch is imported once a worker has set itself up
    assert all(map(_has_torch, workers)), "the workers did not start"
    assert child.poll() is None, "the scan ended before it could be killed"
    return child, workers


def _kill_all(child: subprocess.Popen[bytes], workers: list[int]) -> None:
    for pid in [child.pid, *workers]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    child.wait()
    child.stderr.close()


def test_workers_die_with_a_killed_scan(make_audio: Callable[..., Path], music: Path, db_url: str) -> None:
    _many(make_audio, 12, seconds=20)
    child, workers = _start_scan_with_workers(music, db_url)
    try:
        os.kill(child.pid, signal.SIGKILL)  # the parent only: its workers must notice by themselves
        child.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(map(_alive, workers)):
            time.sleep(0.1)
        assert not [pid for pid in workers if _alive(pid)], "workers outlived their scan"
    finally:
        _kill_all(child, workers)


def test_sigterm_stops_a_scan_cleanly_and_the_next_scan_resumes(
    make_audio: Callable[..., Path], music: Path, db_url: str
) -> None:
    files = _many(make_audio, 12, seconds=20)
    child, workers = _start_scan_with_workers(music, db_url)
    try:
        started = time.monotonic()
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 143
        assert time.monotonic() - started < 5
        assert child.stderr.read().decode().strip() == "terminated"
        assert not [pid for pid in workers if _alive(pid)]
        library = open_library(db_url)
        try:
            _assert_intact(library)
            with library.session() as session:
                assert library_status(session).analysed < len(files)
            summary = scan(library, [music], ScanOptions(jobs=1, small_scans_in_process=False))
            assert summary.failed == 0
            with library.session() as session:
                assert library_status(session).analysed == len(files)
        finally:
            library.close()
    finally:
        _kill_all(child, workers)


def _slow_analysis(path: str, *, observe: object = None) -> np.ndarray:
    """A file that takes a minute to analyse (runs in a worker process)."""
    time.sleep(60)
    return np.zeros((1, 2), dtype=np.float32)


def test_closing_workers_stops_a_run_at_once(tmp_path: Path) -> None:
    from queueemo.errors import QueueemoError
    from queueemo.library.analysis import Workers

    workers = Workers(_slow_analysis, 2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            list(workers.run([(i, str(tmp_path / f"{i}.wav")) for i in range(4)]))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_children_of_this_test()) < 2:
        time.sleep(0.05)
    pids = _children_of_this_test()
    assert len(pids) == 2
    time.sleep(2)
    started = time.monotonic()
    workers.close()  # as a daemon stopping from another thread would
    runner.join(10)
    assert not runner.is_alive()
    assert time.monotonic() - started < 5
    assert len(errors) == 1 and isinstance(errors[0], QueueemoError)
    assert not [pid for pid in pids if _alive(pid)]


def _children_of_this_test() -> list[int]:
    return _workers_of(os.getpid())
