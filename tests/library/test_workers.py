"""``scan --worker``: several processes share one PostgreSQL index through claims with leases."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from queueemo.library import ScanOptions, Track, open_library
from queueemo.library.analysis import analyse_one, current_model_version
from queueemo.library.claims import (
    ScanWorker,
    _enqueue,
    _finish,
    _left,
    claim,
    work,
    worker_name,
    worker_status,
)
from queueemo.library.roots import Roots

pytestmark = pytest.mark.usefixtures("clip_model")


def _worker(music: Path, url: str, lease_s: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from queueemo.cli import main; main()", "scan", "--worker", str(music),
         "--db", url, "--lease", str(lease_s)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _status(url: str) -> str:
    result = subprocess.run([sys.executable, "-c", "from queueemo.cli import main; main()", "status",
                             "--db", url], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _rows(url: str, query: sa.Select) -> list[sa.Row]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(query).all()
    except sa.exc.OperationalError:
        return []
    finally:
        engine.dispose()


def test_two_workers_one_killed_every_track_stored_once(
    postgres, music: Path, make_audio: Callable[..., Path]
) -> None:
    # Long enough files that the victim is caught holding a claim (each takes a few tenths of a second).
    files = [make_audio(f"music/{i:02d}.wav", seconds=8, freq=150 + 40 * i) for i in range(10)]
    url = postgres.new_database()
    open_library(url).close()
    victim, survivor = _worker(music, url, lease_s=3), _worker(music, url, lease_s=3)
    victim_name = f"{socket.gethostname()}:{victim.pid}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and victim.poll() is None:
            analysed = _rows(url, sa.select(ScanWorker.analysed).where(ScanWorker.name == victim_name))
            holding = _rows(url, sa.select(Track.id).where(Track.claimed_by == victim_name,
                                                             Track.status == "pending"))
            if analysed and analysed[0][0] >= 1 and holding:
                victim.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        victim.wait()
        assert victim.returncode == -signal.SIGKILL, "the victim finished before it could be killed"
        _, err = survivor.communicate(timeout=240)
        assert survivor.returncode == 0, err
    finally:
        for process in (victim, survivor):
            if process.poll() is None:
                process.kill()
                process.wait()
    tracks = _rows(url, sa.select(Track.status, Track.claimed_by))
    assert len(tracks) == len(files)
    assert {status for status, _ in tracks} == {"ok"}
    assert all(claimed is None for _, claimed in tracks), "a claim was left behind"
    workers = dict(_rows(url, sa.select(ScanWorker.name, ScanWorker.analysed)))
    assert sum(workers.values()) == len(files), workers  # each track stored (and counted) once
    assert workers[victim_name] >= 1 and len(workers) == 2
    status = subprocess.run([sys.executable, "-c", "from queueemo.cli import main; main()", "status",
                             "--db", url], capture_output=True, text=True, timeout=60)
    assert f"worker {victim_name}: {workers[victim_name]} analysed" in status.stdout, status.stdout
    assert "pending         0" in status.stdout


def test_status_shows_a_killed_workers_claims_then_their_return(
    postgres, music: Path, make_audio: Callable[..., Path]
) -> None:
    files = [make_audio(f"music/{i}.wav", seconds=3, freq=200 + 50 * i) for i in range(3)]
    url = postgres.new_database()
    open_library(url).close()
    victim = _worker(music, url, lease_s=20)  # outlives a cold `status` on a loaded machine
    name = f"{socket.gethostname()}:{victim.pid}"
    held: list[sa.Row] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and victim.poll() is None and not held:
            held = _rows(url, sa.select(Track.id, Track.lease_until).where(Track.claimed_by == name))
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        assert victim.returncode == -signal.SIGKILL and held, "the victim never held a claim"
        held = _rows(url, sa.select(Track.id, Track.lease_until).where(Track.claimed_by == name))
        before = _status(url)
        assert f"{len(held)} claimed now, last seen" in before, before
        time.sleep(max(0.0, (max(until for _, until in held) - datetime.now(UTC).replace(tzinfo=None))
                       .total_seconds()) + 0.5)
        after = _status(url)
        assert (f"0 claimed now, {len(held)} expired (returning to the queue)" in after
                and f"pending   {len(files) - _done(url):7d}" in after), after
        survivor = _worker(music, url, lease_s=600)
        _, err = survivor.communicate(timeout=240)
        assert survivor.returncode == 0, err
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    final = _status(url)
    assert "expired" not in final and "pending         0" in final, final
    assert sorted(_rows(url, sa.select(Track.status, Track.claimed_by))) == [("ok", None)] * len(files)


def _done(url: str) -> int:
    return _rows(url, sa.select(sa.func.count()).where(Track.status == "ok"))[0][0]


def test_worker_rides_out_a_database_restart(
    postgres, music: Path, make_audio: Callable[..., Path]
) -> None:
    files = [make_audio(f"music/{i:02d}.wav", seconds=1, freq=200 + 30 * i) for i in range(5)]
    url = postgres.new_database()
    open_library(url).close()
    worker = _worker(music, url, lease_s=600)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and worker.poll() is None:
            done = _rows(url, sa.select(sa.func.count()).where(Track.status == "ok"))
            if done and done[0][0] >= 2:
                postgres.restart(down_s=2)
                break
            time.sleep(0.05)
        _, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
        assert err.count("retrying") == 1 and "database back after" in err, err  # one line per outage
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    tracks = _rows(url, sa.select(Track.status, Track.claimed_by))
    assert sorted(tracks) == [("ok", None)] * len(files)
    assert sum(dict(_rows(url, sa.select(ScanWorker.name, ScanWorker.analysed))).values()) == len(files)
    whole = sa.and_(Track.trajectory.is_not(None), Track.model_version.is_not(None),
                    Track.opening_arousal.is_not(None), Track.mean_valence.is_not(None))
    assert _rows(url, sa.select(sa.func.count()).where(whole)) == [(len(files),)]  # no half track


def test_worker_rides_out_a_database_restart_while_enqueueing(
    postgres, music: Path, make_audio: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retries covered claiming and storing only: a server restart while the worker discovered
    and classified (under the enqueue lock) ended it ('server closed the connection unexpectedly')."""
    import psycopg

    from queueemo.library import claims

    files = [make_audio(f"music/{i}.wav", seconds=1, freq=300 + 50 * i) for i in range(2)]
    url = postgres.new_database()
    real_scan, restarts = claims.scan, []

    def scan_while_restarting(*args, **kwargs):
        if not restarts:
            restarts.append(threading.Thread(target=postgres.restart, kwargs={"down_s": 2}))
            restarts[0].start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until the server is down
                try:
                    psycopg.connect(host=str(postgres.socket_dir), user="queueemo", dbname="postgres").close()
                except psycopg.OperationalError:
                    break
                time.sleep(0.02)
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(claims, "scan", scan_while_restarting)
    with open_library(url) as library:
        try:
            summary = work(library, [music], ScanOptions(jobs=1), lease_s=600, name="steady")
        finally:
            restarts[0].join(60)
    assert summary.analysed == len(files) and _done(url) == len(files)


def test_a_worker_waiting_for_the_enqueue_lock_says_whom_it_waits_for(
    postgres, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker stopped (or its laptop suspended) while enqueueing keeps the lock until its connection
    ends; every other worker waited for it without a word, even with -v."""
    monkeypatch.setattr("queueemo.library.db.LOCK_QUIET_S", 0.5)  # a holder that is only quick is not named
    url = postgres.new_database()
    entered, release = threading.Event(), threading.Event()
    with open_library(url) as first, open_library(url) as second:

        def hold() -> None:
            with first.exclusive(0x51, holder="scan on laptop:42"):
                entered.set()
                release.wait(60)

        holder = threading.Thread(target=hold)
        holder.start()
        assert entered.wait(30)
        def wait_then_take() -> None:
            with second.exclusive(0x51, holder="nas:7"):
                pass

        waiter = threading.Thread(target=wait_then_take)
        with caplog.at_level("WARNING", logger="queueemo.library.db"):
            waiter.start()
            deadline = time.monotonic() + 30
            while "waiting for" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
            assert waiter.is_alive()  # it waits
            release.set()
            holder.join(30)
            waiter.join(30)
            assert not waiter.is_alive()  # and goes on once the lock is free
    assert "waiting for scan on laptop:42 (connected since" in caplog.text
    caplog.clear()
    with open_library(url) as first, open_library(url) as second, caplog.at_level("WARNING"):
        with first.exclusive(0x51, holder="quick:1"):  # held briefly, as enqueueing normally is
            waiter = threading.Thread(target=wait_then_take)
            waiter.start()
            time.sleep(0.2)
        waiter.join(30)
    assert "waiting for" not in caplog.text


def test_a_lock_held_by_another_role_is_named_too(postgres, caplog: pytest.LogCaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL hides another role's connection time from a role without pg_read_all_stats."""
    import psycopg

    monkeypatch.setattr("queueemo.library.db.LOCK_QUIET_S", 0.3)
    url = postgres.new_database()
    open_library(url).close()
    dbname = sa.make_url(url).database
    with psycopg.connect(host=str(postgres.socket_dir), user="queueemo", dbname=dbname,
                         autocommit=True) as admin:
        for role in ("holder", "waiter"):
            admin.execute(f"CREATE ROLE \"{role}_{dbname}\" LOGIN PASSWORD 'pw'")
            admin.execute(f'GRANT SELECT ON alembic_version TO "{role}_{dbname}"')
    as_role = {role: url.replace("queueemo@", f"{role}_{dbname}:pw@") for role in ("holder", "waiter")}
    with open_library(as_role["holder"]) as first, open_library(as_role["waiter"]) as second, \
            first.exclusive(0x52, holder="scan on laptop:42"), caplog.at_level("WARNING"):
        def take() -> None:
            with second.exclusive(0x52):
                pass

        waiter = threading.Thread(target=take, daemon=True)
        waiter.start()
        deadline = time.monotonic() + 30
        while "waiting for" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    waiter.join(30)
    assert "waiting for scan on laptop:42, which holds" in caplog.text


def test_claims_skip_locked_and_expire(postgres) -> None:
    url = postgres.new_database()
    with open_library(url) as library:
        with library.session() as session:
            for name in ("a", "b"):
                session.add(Track(path=f"/m/{name}.ogg", root="/m", rel_path=f"{name}.ogg", size=1,
                                  mtime_ns=1, status="pending"))
            session.add(Track(path="/m/old.ogg", root="/m", rel_path="old.ogg", size=1, mtime_ns=1,
                              status="ok", model_version="v1"))
            session.add(Track(path="/m/new.ogg", root="/m", rel_path="new.ogg", size=1, mtime_ns=1,
                              status="ok", model_version="v2"))
        claims = [claim(library, name, "v2", lease_s=1) for name in ("one", "two", "three")]
        assert sorted(path for _, path in claims) == ["/m/a.ogg", "/m/b.ogg", "/m/old.ogg"]
        assert claim(library, "four", "v2", lease_s=1) is None  # all held; new.ogg is current
        assert claim(library, "four", "v2", lease_s=1, roots=["/elsewhere"]) is None
        time.sleep(1.2)
        assert claim(library, "four", "v2", lease_s=60, roots=["/m"]) is not None  # expired: returns


def test_workers_with_different_models_do_not_redo_each_others_work(postgres) -> None:
    """A v2-lite worker and a seed worker re-analysed each other's results for as long as both ran
    (660 analyses of 400 tracks in 70 s, 300 of them still pending): each now leaves what another
    model stored after it started, and re-analyses only what was there before."""
    now = datetime.now(UTC).replace(tzinfo=None)
    url = postgres.new_database()
    with open_library(url) as library:
        with library.session() as session:
            for name, at in (("before", now - timedelta(hours=1)), ("meanwhile", now + timedelta(seconds=1))):
                session.add(Track(path=f"/m/{name}.ogg", root="/m", rel_path=f"{name}.ogg", size=1,
                                  mtime_ns=1, status="ok", model_version="seed", analysed_at=at))
        assert claim(library, "lite", "v2-lite", lease_s=60, since=now)[1] == "/m/before.ogg"
        assert claim(library, "lite", "v2-lite", lease_s=60, since=now) is None
        assert _left(library, "v2-lite", ["/m"], "lite", since=now) == 0  # nothing to wait for
        assert claim(library, "lite", "v2-lite", lease_s=60)[1] == "/m/meanwhile.ogg"  # a later run


def test_the_first_result_is_stored_even_after_its_lease_ran_out(postgres, music: Path,
                                                                 make_audio: Callable[..., Path]) -> None:
    """Only the claim's current holder could store: two workers whose analyses outlast the lease
    (--lease 1, a long file) took the track from each other forever, every result dropped."""
    make_audio("music/long.wav", seconds=1)
    options = ScanOptions(jobs=1)
    version = current_model_version()
    with open_library(postgres.new_database()) as library:
        _enqueue(library, [str(music)], options)
        slow = claim(library, "slow", version, lease_s=1)
        time.sleep(1.2)
        assert claim(library, "fast", version, lease_s=60) == slow  # taken over
        outcome = analyse_one(*slow, options.analyse)
        assert _finish(library, "slow", outcome, options, version) is True  # first: stored
        assert _finish(library, "fast", outcome, options, version) is None  # second: dropped
        with library.session() as session:
            assert session.execute(sa.select(Track.status, Track.claimed_by)).all() == [("ok", None)]


def test_a_stopped_worker_hands_its_claims_back(postgres, music: Path,
                                               make_audio: Callable[..., Path]) -> None:
    """Ctrl-C or SIGTERM (exit 143) left the claims of the tracks in flight held for the whole lease:
    the next worker waited 10 minutes for them."""
    for i in range(5):
        make_audio(f"music/{i}.wav", seconds=1, freq=300 + 50 * i)

    def stop(done: int, total: int) -> None:
        if done:
            raise KeyboardInterrupt

    url = postgres.new_database()
    with open_library(url) as library, pytest.raises(KeyboardInterrupt):
        work(library, [music], ScanOptions(jobs=2), lease_s=600, name="stopped", progress=stop)
    assert _rows(url, sa.select(sa.func.count()).where(Track.status == "pending")) != [(0,)]
    assert _rows(url, sa.select(Track.path).where(Track.claimed_by.is_not(None))) == []


def test_a_worker_restarted_under_the_same_name_analyses_its_predecessors_claims(
    postgres, music: Path, make_audio: Callable[..., Path]
) -> None:
    """A container restarted after a crash keeps its host name and pid 1: the new worker took the
    dead one's live claims for its own, never analysed them and ended with them still pending."""
    files = [make_audio(f"music/{i}.wav", seconds=1, freq=300 + 50 * i) for i in range(2)]
    with open_library(postgres.new_database()) as library:
        _enqueue(library, [str(music)], ScanOptions(jobs=1))
        assert claim(library, "box:1", current_model_version(), lease_s=600) is not None  # then it died
        summary = work(library, [music], ScanOptions(jobs=1), lease_s=600, name="box:1")
        assert summary.analysed == len(files)
        with library.session() as session:
            assert session.scalars(sa.select(Track.status)).all() == ["ok"] * len(files)


def test_a_worker_with_a_pool_finishes_its_own_claims(postgres, music: Path,
                                                     make_audio: Callable[..., Path]) -> None:
    files = [make_audio(f"music/{i}.wav", seconds=1, freq=300 + 50 * i) for i in range(3)]
    with open_library(postgres.new_database()) as library:
        summary = work(library, [music], ScanOptions(jobs=2), lease_s=60, name="pool")
        assert summary.analysed == len(files)
        with library.session() as session:
            assert [w.analysed for w in worker_status(session)] == [len(files)]


def test_a_worker_stores_its_results_while_another_worker_holds_the_last_claim(
    postgres, music: Path, make_audio: Callable[..., Path]
) -> None:
    """With a pool (-j 2), a worker that found nothing left to claim waited for the other workers'
    claims before storing the analyses it had finished: up to a whole lease (10 min) with results
    held back, and its own leases running out meanwhile."""
    files = [make_audio(f"music/{i}.wav", seconds=1, freq=300 + 50 * i) for i in range(4)]
    url = postgres.new_database()
    with open_library(url) as library:
        _enqueue(library, [str(music)], ScanOptions(jobs=1))
        with library.session() as session:  # another worker analyses the last track, for a long time
            session.execute(sa.update(Track).where(Track.path == str(files[-1])).values(
                claimed_by="elsewhere:1", lease_until=datetime.now(UTC).replace(tzinfo=None)
                + timedelta(seconds=600)))
        finished: list[int] = []
        worker = threading.Thread(target=lambda: finished.append(
            work(library, [music], ScanOptions(jobs=2), lease_s=600, name="pool").analysed))
        worker.start()
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and _done(url) < len(files) - 1:
                time.sleep(0.1)
            assert _done(url) == len(files) - 1, "the worker held its finished results back"
        finally:  # the other worker finishes: the pool's worker ends
            with library.session() as session:
                session.execute(sa.update(Track).where(Track.path == str(files[-1])).values(
                    claimed_by=None, lease_until=None, status="failed"))
            worker.join(60)
        assert finished == [len(files) - 1]


def test_a_worker_given_a_file_analyses_it(postgres, music: Path, make_audio: Callable[..., Path]) -> None:
    """`scan --worker FILE` enqueued the file, claimed nothing (only tracks under folders) and left it
    pending, reporting 'analysed 0'."""
    song = make_audio("music/one.wav", seconds=1)
    with open_library(postgres.new_database()) as library:
        assert work(library, [song], ScanOptions(jobs=1), lease_s=60, name="file").analysed == 1
        with library.session() as session:
            assert session.scalars(sa.select(Track.status)).all() == ["ok"]


def test_a_long_host_name_keeps_the_pid_in_the_worker_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name was cut at 64 characters from the end, pid first: with a 60-character host name
    (a Kubernetes pod) workers 12345 and 12399 were both 'host:123'."""
    monkeypatch.setattr(socket, "gethostname", lambda: "queueemo-worker-" + "x" * 44)
    name = worker_name()
    assert len(name) <= 64 and name.endswith(f":{os.getpid()}")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: one per CPU is in process")
def test_a_worker_with_jobs_0_analyses_with_one_process_per_cpu(postgres, music: Path,
                                                                make_audio: Callable[..., Path]) -> None:
    """`scan --worker -j 0` (help: 0 = one per CPU) analysed in its own process, one file at a time."""
    for i in range(2):
        make_audio(f"music/{i}.wav", seconds=1, freq=300 + 50 * i)
    pool_sizes: list[int] = []
    with open_library(postgres.new_database()) as library:
        work(library, [music], ScanOptions(jobs=0), lease_s=60, name="all-cpus",
             progress=lambda done, total: pool_sizes.append(len(multiprocessing.active_children())))
    assert max(pool_sizes) >= 2


def test_on_sqlite_scan_worker_is_the_local_scan(music: Path, make_audio: Callable[..., Path],
                                                 tmp_path: Path) -> None:
    make_audio("music/a.wav", seconds=2)
    url = f"sqlite:///{tmp_path / 'w.sqlite3'}"
    result = subprocess.run(
        [sys.executable, "-c", "from queueemo.cli import main; main()", "scan", "--worker", str(music),
         "--db", url], capture_output=True, text=True, timeout=180, env=os.environ)
    assert result.returncode == 0, result.stderr
    assert "analysed 1" in result.stdout


@pytest.mark.parametrize("mapping", ["unmounted", "misnamed"])
def test_worker_with_a_wrong_root_mapping_says_so_and_claims_nothing(
    postgres, mapping: str, tmp_path: Path, make_audio: Callable[..., Path]
) -> None:
    share = make_audio("share/a.wav", seconds=1).parent
    url = postgres.new_database()
    library = open_library(url, roots=Roots.parse([f"music={share}"]))
    with library, library.session() as session:
        session.add(Track(path=str(share / "a.wav"), root=str(share), rel_path="a.wav", size=1,
                          mtime_ns=1))
    mount = tmp_path / "mnt"
    if mapping == "unmounted":  # the share's mount point exists, but nothing is mounted there
        mount.mkdir()
        name = "music"
    else:  # the share is mounted, under another root name than the index's
        mount.symlink_to(share)
        name = "musik"
    config = tmp_path / "config.toml"
    config.write_text(f'[library]\nroot_names = ["{name}={mount}"]\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", "from queueemo.cli import main; main()", "--config", str(config), "scan",
         "--worker", str(mount), "--db", url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "claiming nothing" in lines[0], result.stderr
    assert ("none of the index's tracks" if mapping == "unmounted" else "name it 'music'") in lines[0]
    rows = _rows(url, sa.select(Track.path, Track.status, Track.claimed_by))
    assert rows == [("music:/a.wav", "pending", None)]  # as stored, unclaimed
    assert _rows(url, sa.select(ScanWorker.name)) == []


def test_workers_on_two_mount_points_of_one_share_analyse_each_track_once(
    postgres, tmp_path: Path, make_audio: Callable[..., Path]
) -> None:
    share = make_audio("share/a.wav", seconds=1).parent
    make_audio("share/sub/b.wav", seconds=1, freq=330)
    (tmp_path / "here").symlink_to(share)
    (tmp_path / "there").symlink_to(share)
    url = postgres.new_database()
    summaries = []
    for mount in ("here", "there"):
        with open_library(url, roots=Roots.parse([f"music={tmp_path / mount}"])) as library:
            summaries.append(work(library, [tmp_path / mount], ScanOptions(jobs=1), name=mount))
    assert [(s.analysed, s.unchanged) for s in summaries] == [(2, 0), (0, 2)]
    assert sorted(_rows(url, sa.select(Track.path, Track.status))) == [
        ("music:/a.wav", "ok"), ("music:/sub/b.wav", "ok")]


def test_a_new_worker_forgets_workers_long_gone_that_hold_nothing(postgres, music: Path,
                                                                  make_audio: Callable[..., Path]
                                                                  ) -> None:
    """Every `scan --worker` ever run stayed in `status`, and a reused host:pid kept its counts."""
    make_audio("music/a.wav", seconds=1)
    long_ago, lately = datetime(2000, 1, 1), datetime.now(UTC).replace(tzinfo=None)
    with open_library(postgres.new_database()) as library:
        with library.session() as session:
            for name, seen in (("gone", long_ago), ("gone-holding", long_ago), ("recent", lately),
                               ("reused", lately)):
                session.add(ScanWorker(name=name, started_at=seen, last_seen=seen, analysed=50, failed=0))
            session.add(Track(path="/m/held.ogg", root="/m", rel_path="held.ogg", size=1, mtime_ns=1,
                              status="pending", claimed_by="gone-holding", lease_until=long_ago))
        work(library, [music], ScanOptions(jobs=1), lease_s=60, name="reused")
        with library.session() as session:
            workers = {w.name: w.analysed for w in worker_status(session)}
    assert workers == {"gone-holding": 50, "recent": 50, "reused": 1}
