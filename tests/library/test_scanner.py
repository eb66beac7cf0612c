"""Scanning with the real model: incremental behaviour, bad files, worker processes."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mutagen.flac
import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from queueemo.library import (
    Library,
    ScanOptions,
    Track,
    failures,
    get_track_by_path,
    scan,
    trajectory,
)
from queueemo.library.analysis import ANALYSIS_FORMAT, current_model_version

pytestmark = pytest.mark.usefixtures("clip_model")


def _tracks(library: Library) -> dict[str, Track]:
    with library.session() as session:
        return {track.path: track for track in session.scalars(sa.select(Track))}


@pytest.fixture
def album(make_audio: Callable[..., Path], music: Path) -> list[Path]:
    files = [
        make_audio("music/one.flac", seconds=3, freq=220),
        make_audio("music/two.mp3", seconds=2, freq=440, pulse_hz=4),
        make_audio("music/sub/three.wav", seconds=2.5, freq=660, noise=0.05),
    ]
    tags = mutagen.flac.FLAC(files[0])
    tags.update({"artist": "Ann", "albumartist": "Band", "album": "First", "title": "One",
                 "genre": "Jazz", "tracknumber": "3/12"})
    tags.save()
    return files


def test_first_scan_analyses_every_file(album: list[Path], rescan, library: Library) -> None:
    summary = rescan(opening_windows=2, closing_windows=3)
    assert summary.line() == "analysed 3, unchanged 0, moved 0, removed 0, failed 0"
    tracks = _tracks(library)
    one = tracks[str(album[0])]
    points = trajectory(one)
    assert one.status == "ok" and one.model_version and one.analysed_at
    assert points.shape == (6, 2) and np.all(np.abs(points) <= 1)
    assert (one.artist, one.albumartist, one.album, one.title, one.genre, one.tracknumber) == (
        "Ann", "Band", "First", "One", "Jazz", 3)
    assert one.duration_s == pytest.approx(3.0, abs=0.05)
    assert one.opening_arousal == pytest.approx(points[:2, 0].mean(), abs=1e-3)
    assert one.closing_valence == pytest.approx(points[-3:, 1].mean(), abs=1e-3)
    assert one.mean_arousal == pytest.approx(points[:, 0].mean(), abs=1e-3)
    assert tracks[str(album[2])].rel_path == os.path.join("sub", "three.wav")


def test_unchanged_files_are_not_analysed_again(album: list[Path], rescan, library: Library) -> None:
    rescan()
    before = {path: track.analysed_at for path, track in _tracks(library).items()}
    assert rescan().line() == "analysed 0, unchanged 3, moved 0, removed 0, failed 0"
    assert {path: track.analysed_at for path, track in _tracks(library).items()} == before


def test_moved_file_keeps_its_analysis(album: list[Path], rescan, library: Library, music: Path) -> None:
    rescan()
    old = _tracks(library)[str(album[1])]
    target = music / "elsewhere" / "renamed.mp3"
    target.parent.mkdir()
    album[1].rename(target)
    assert rescan().line() == "analysed 0, unchanged 2, moved 1, removed 0, failed 0"
    moved = _tracks(library)[str(target)]
    assert (moved.id, moved.analysed_at, moved.trajectory) == (old.id, old.analysed_at, old.trajectory)
    assert moved.rel_path == os.path.join("elsewhere", "renamed.mp3")


def test_plays_of_a_moved_file_follow_it(album: list[Path], rescan, library: Library, music: Path) -> None:
    """A moved song lost its play history (kept by MPD URI) and could repeat inside the repeat window."""
    from queueemo.library.history import recent_plays, record_play

    rescan()
    record_play(library, "two.mp3", "Bo", 1000.0)  # root = MPD's music folder
    record_play(library, "nas/music/two.mp3", "Bo", 1001.0)  # the root lies deeper in MPD's folder
    record_play(library, "old_two.mp3", "Bo", 1002.0)  # another song whose name ends alike
    target = music / "elsewhere" / "renamed.mp3"
    target.parent.mkdir()
    album[1].rename(target)
    assert rescan().moved == 1
    assert [uri for uri, _, _ in recent_plays(library, 0)] == [
        "elsewhere/renamed.mp3", "nas/music/elsewhere/renamed.mp3", "old_two.mp3"]


def test_deleted_file_leaves_the_index(album: list[Path], rescan, library: Library) -> None:
    rescan()
    album[2].unlink()
    assert rescan().line() == "analysed 0, unchanged 2, moved 0, removed 1, failed 0"
    assert str(album[2]) not in _tracks(library)


def test_changed_file_is_analysed_again(album: list[Path], rescan, library: Library,
                                        make_audio: Callable[..., Path]) -> None:
    rescan()
    make_audio("music/sub/three.wav", seconds=4, freq=330)
    assert rescan().line() == "analysed 1, unchanged 2, moved 0, removed 0, failed 0"
    assert trajectory(_tracks(library)[str(album[2])]).shape == (8, 2)


def test_touched_file_keeps_its_analysis(album: list[Path], rescan, library: Library) -> None:
    rescan()
    before = _tracks(library)[str(album[0])]
    os.utime(album[0], ns=(before.mtime_ns + 10**9, before.mtime_ns + 10**9))
    assert rescan().line() == "analysed 0, unchanged 3, moved 0, removed 0, failed 0"
    after = _tracks(library)[str(album[0])]
    assert (after.analysed_at, after.mtime_ns) == (before.analysed_at, before.mtime_ns + 10**9)


def test_tracks_from_an_older_model_are_analysed_again(album: list[Path], rescan,
                                                       library: Library) -> None:
    rescan()
    with library.session() as session:
        session.execute(sa.update(Track).values(model_version="older"))
    assert rescan().line() == "analysed 3, unchanged 0, moved 0, removed 0, failed 0"
    assert {track.model_version for track in _tracks(library).values()} != {"older"}


def test_tracks_from_an_older_analysis_format_are_analysed_again(album: list[Path], rescan,
                                                                 library: Library) -> None:
    rescan()
    current = {t.model_version for t in _tracks(library).values()}
    assert len(current) == 1 and current.pop().endswith(f"+a{ANALYSIS_FORMAT}")
    with library.session() as session:  # what a queueemo before the analysis format stored
        session.execute(sa.update(Track).where(Track.path == str(album[1]))
                        .values(model_version=current_model_version().split("+")[0], opening_onsets=None))
    assert rescan().line() == "analysed 1, unchanged 2, moved 0, removed 0, failed 0"
    assert _tracks(library)[str(album[1])].opening_onsets is not None


def test_identical_copy_reuses_the_analysis(album: list[Path], rescan, library: Library,
                                            music: Path) -> None:
    rescan()
    copy = shutil.copy(album[0], music / "copy.flac")
    assert rescan().line() == "analysed 1, unchanged 3, moved 0, removed 0, failed 0"
    tracks = _tracks(library)
    original, duplicate = tracks[str(album[0])], tracks[str(copy)]
    assert duplicate.id != original.id
    assert (duplicate.analysed_at, duplicate.trajectory) == (original.analysed_at, original.trajectory)


def test_bad_files_are_recorded_and_not_retried(rescan, library: Library, music: Path,
                                                make_audio: Callable[..., Path]) -> None:
    (music / "empty.mp3").write_bytes(b"")
    (music / "letter.mp3").write_text("Dear user, this is not audio.\n" * 50)
    whole = make_audio("music/cut.flac", seconds=4, noise=0.1).read_bytes()
    (music / "cut.flac").write_bytes(whole[: len(whole) * 2 // 5])
    make_audio("music/größe — ß.flac", seconds=1)
    make_audio("music/two\nlines.wav", seconds=1)
    latin1 = os.fsencode(music) + b"/caf\xe9.wav"
    shutil.copy(make_audio("music/tmp.flac", seconds=1.5), latin1)
    os.remove(music / "tmp.flac")

    assert rescan().line() == "analysed 3, unchanged 0, moved 0, removed 0, failed 3"
    with library.session() as session:
        reasons = dict(failures(session))
        assert get_track_by_path(session, os.fsdecode(latin1)).status == "ok"
    assert set(reasons) == {str(music / name) for name in ("empty.mp3", "letter.mp3", "cut.flac")}
    assert "empty" in reasons[str(music / "empty.mp3")]
    assert "truncated" in reasons[str(music / "cut.flac")]
    before = {path: track.analysed_at for path, track in _tracks(library).items()}

    assert rescan().line() == "analysed 0, unchanged 3, moved 0, removed 0, failed 3"
    assert {path: track.analysed_at for path, track in _tracks(library).items()} == before

    make_audio("music/letter.mp3", seconds=1)  # fixed: changed size and mtime, so tried again
    assert rescan().line() == "analysed 1, unchanged 3, moved 0, removed 0, failed 2"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_unreadable_file_is_recorded(rescan, music: Path, make_audio: Callable[..., Path],
                                     library: Library) -> None:
    secret = make_audio("music/secret.wav", seconds=1)
    secret.chmod(0)
    assert rescan().failed == 1
    with library.session() as session:
        assert "permission" in dict(failures(session))[str(secret)]


def test_empty_root_keeps_its_tracks(album: list[Path], rescan, music: Path) -> None:
    rescan()
    for path in album:
        path.unlink()
    assert rescan().removed == 0  # an unmounted disk looks like this


def test_tracks_behind_a_link_that_cannot_be_followed_are_kept(
    album: list[Path], rescan, library: Library, music: Path, make_audio: Callable[..., Path],
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """A folder or file linked from another disk that is not mounted (or a folder without read or
    search permission) could not be read: its tracks used to be removed, their analysis lost."""
    make_audio("disk2/live/far.wav", seconds=2, freq=300)
    make_audio("disk2/song.wav", seconds=2, freq=500)
    (music / "live").symlink_to(tmp_path / "disk2" / "live")
    (music / "song.wav").symlink_to(tmp_path / "disk2" / "song.wav")
    assert rescan().line() == "analysed 5, unchanged 0, moved 0, removed 0, failed 0"
    before = _tracks(library)
    (tmp_path / "disk2").rename(tmp_path / "unmounted")
    with caplog.at_level("WARNING", logger="queueemo.library"):
        assert rescan().line() == "analysed 0, unchanged 3, moved 0, removed 0, failed 0"
    assert f"cannot read {str(music / 'song.wav')!r}" in caplog.text
    kept, far = _tracks(library), str(music / "live" / "far.wav")
    assert kept[far].trajectory == before[far].trajectory
    assert str(music / "song.wav") in kept
    (tmp_path / "unmounted").rename(tmp_path / "disk2")
    assert rescan().line() == "analysed 0, unchanged 5, moved 0, removed 0, failed 0"


def test_a_scan_racing_another_scan_of_the_same_files_plans_again(
    album: list[Path], rescan, library: Library, db_url: str,
) -> None:
    """Two scans of one folder (the daemon's watcher and `queueemo scan`) both planned to add the same
    new files; the second to commit failed with 'UNIQUE constraint failed: tracks.path'."""
    from sqlalchemy.orm import Session

    from queueemo.library import open_library

    other = open_library(db_url)  # the other scan, committing its plan just before this one does
    first = album[0].stat()

    done: list[bool] = []

    def commit_the_other_plan(session: Session, *_: object) -> None:
        if done or session.bind is other.engine:
            return
        done.append(True)
        with other.session() as theirs:
            theirs.add(Track(path=str(album[0]), root=str(album[0].parent), rel_path=album[0].name,
                             size=first.st_size, mtime_ns=first.st_mtime_ns, status="pending"))

    sa.event.listen(Session, "before_flush", commit_the_other_plan)
    try:
        assert rescan().line() == "analysed 3, unchanged 0, moved 0, removed 0, failed 0"
    finally:
        sa.event.remove(Session, "before_flush", commit_the_other_plan)
        other.close()
    tracks = _tracks(library)
    assert sorted(tracks) == sorted(map(str, album))
    assert {track.status for track in tracks.values()} == {"ok"}


def test_missing_root_is_refused(rescan, tmp_path: Path) -> None:
    from queueemo.errors import QueueemoError

    with pytest.raises(QueueemoError, match="does not exist"):
        rescan(tmp_path / "not-here")


def test_progress_counts_up_to_the_total(album: list[Path], rescan, library: Library,
                                         music: Path) -> None:
    calls: list[tuple[int, int]] = []
    scan(library, [music], ScanOptions(jobs=1), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_worker_processes_give_the_same_analysis(album: list[Path], library: Library, music: Path,
                                                 tmp_path: Path) -> None:
    from queueemo.library import open_library

    summary = scan(library, [music], ScanOptions(jobs=2, small_scans_in_process=False))
    assert summary.analysed == 3
    serial = open_library(f"sqlite:///{tmp_path / 'serial.sqlite3'}")
    scan(serial, [music], ScanOptions(jobs=1))
    for path, track in _tracks(library).items():
        np.testing.assert_allclose(trajectory(track), trajectory(_tracks(serial)[path]), atol=2e-3)
    serial.close()


def _imports_torch(music: Path, db_url: str) -> tuple[str, bool]:
    """``queueemo scan`` in a fresh process: its summary line, and whether it imported torch."""
    code = ("import sys\nfrom queueemo.cli import main\ntry:\n    main()\nfinally:\n"
            "    print('torch' in sys.modules, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code, "scan", str(music), "--db", db_url],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip(), result.stderr.strip().splitlines()[-1] == "True"


def test_unchanged_rescan_does_not_import_torch(album: list[Path], rescan, music: Path,
                                                db_url: str) -> None:
    (music / "letter.mp3").write_text("Dear user, this is not audio.\n" * 50)
    rescan()
    assert _imports_torch(music, db_url) == (
        "analysed 0, unchanged 3, moved 0, removed 0, failed 1 (why: queueemo status --failed)", False)
    album[0].rename(music / "renamed.flac")
    assert _imports_torch(music, db_url) == (
        "analysed 0, unchanged 2, moved 1, removed 0, failed 1 (why: queueemo status --failed)", False)
    make_audio_again = album[1].read_bytes()
    album[1].write_bytes(make_audio_again[: len(make_audio_again) // 2])  # changed: must analyse
    assert _imports_torch(music, db_url)[1]


def test_a_few_new_or_moved_files_do_not_start_a_pool(album: list[Path], library: Library, music: Path,
                                                     make_audio: Callable[..., Path]) -> None:
    scan(library, [music], ScanOptions(jobs=1))
    album[0].rename(music / "moved.flac")
    album[2].rename(music / "sub" / "moved.wav")
    make_audio("music/new.wav", seconds=1, freq=880)
    make_audio("music/sub/new.mp3", seconds=1, freq=990)
    workers_seen: list[int] = []
    summary = scan(library, [music], ScanOptions(jobs=2),
                   progress=lambda done, total: workers_seen.append(len(multiprocessing.active_children())))
    assert summary.line() == "analysed 2, unchanged 1, moved 2, removed 0, failed 0"
    assert workers_seen == [0, 0, 0]


def test_every_attempt_records_its_decoder(album: list[Path], rescan, library: Library,
                                           music: Path) -> None:
    from queueemo.audio import decoder_identity

    (music / "letter.mp3").write_text("Dear user, this is not audio.\n" * 50)
    rescan()
    decoders = {path: track.decoder for path, track in _tracks(library).items()}
    assert set(decoders.values()) == {decoder_identity()}
    assert decoder_identity().startswith("ffmpeg ") and "libsndfile" in decoder_identity()


def test_failed_files_are_retried_after_a_decoder_update(album: list[Path], rescan, library: Library,
                                                         music: Path) -> None:
    (music / "letter.mp3").write_text("Dear user, this is not audio.\n" * 50)
    rescan()
    # As if one.flac had failed under an older ffmpeg that could not read it: a newer one can.
    with library.session() as session:
        session.execute(sa.update(Track).where(Track.path == str(album[0]))
                        .values(status="failed", error="not decodable audio", trajectory=None))
        session.execute(sa.update(Track).values(decoder="ffmpeg 4.4.2, libsndfile 1.0.31"))
    assert rescan().line() == "analysed 1, unchanged 2, moved 0, removed 0, failed 1"
    tracks = _tracks(library)
    assert tracks[str(album[0])].status == "ok"
    assert tracks[str(music / "letter.mp3")].decoder != "ffmpeg 4.4.2, libsndfile 1.0.31"
    assert rescan().line() == "analysed 0, unchanged 3, moved 0, removed 0, failed 1"


def test_retry_failed_tries_every_failed_file_again(album: list[Path], rescan, library: Library,
                                                    music: Path, db_url: str) -> None:
    from queueemo.cli import cli

    (music / "letter.mp3").write_text("Dear user, this is not audio.\n" * 50)
    rescan()
    with library.session() as session:  # as if it had failed for a reason now fixed (permissions)
        session.execute(sa.update(Track).where(Track.path == str(album[2]))
                        .values(status="failed", error="permission denied", trajectory=None))
    before = {path: track.analysed_at for path, track in _tracks(library).items()}
    assert rescan().failed == 2  # unchanged files, same decoder: not retried
    runner = CliRunner()
    result = runner.invoke(cli, ["scan", str(music), "--retry-failed", "--db", db_url])
    assert result.output.strip() == ("analysed 1, unchanged 2, moved 0, removed 0, failed 1 "
                                     "(why: queueemo status --failed)")
    after = _tracks(library)
    assert after[str(album[2])].status == "ok"
    assert after[str(music / "letter.mp3")].analysed_at > before[str(music / "letter.mp3")]


def test_daemon_style_rescan_with_nothing_to_do_starts_no_workers(album: list[Path], rescan,
                                                                  music: Path, db_url: str) -> None:
    rescan()
    code = ("import sys\nfrom queueemo.library import ScanOptions, open_library, scan\n"
            "library = open_library(sys.argv[2])\n"
            "print(scan(library, [sys.argv[1]], ScanOptions(small_scans_in_process=False)).line())\n"
            "started = {'multiprocessing.popen_spawn_posix', 'multiprocessing.popen_forkserver'}\n"
            "print(bool(started & set(sys.modules)), 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code, str(music), db_url],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "analysed 0, unchanged 3, moved 0, removed 0, failed 0", "False False"]


def test_scan_stores_audible_boundaries_and_measures_the_opening_inside_them(library: Library, music: Path):
    from audiofiles import synth, write_audio

    rate = 44_100
    silence = np.zeros(4 * rate, dtype=np.float32)
    body = synth(16, freq=330, loud=0.3, pulse_hz=2, noise=0.05)
    fade = synth(8, freq=330, loud=0.3, noise=0.05) * np.logspace(0, -3, 8 * rate, dtype=np.float32)
    path = write_audio(music / "quiet start, fade out.flac", np.concatenate([silence, body, fade]), sr=rate)
    scan(library, [music], ScanOptions(jobs=1))
    with library.session() as session:
        track = get_track_by_path(session, path)
        assert track is not None and track.status == "ok"
        assert track.sound_start_s == pytest.approx(4.0, abs=0.5)
        assert 19.0 <= track.ending_start_s <= 22.0  # the body ends at 20 s, the fade follows
        assert track.opening_lufs > track.ending_lufs - 1  # the ending includes the fading sound
        assert track.opening_brightness > 0 and track.ending_brightness > 0
        points = trajectory(track)
    # the stored opening is the mean of the audible opening, not of the silence before it
    first = int(4.0 / 0.5)
    expected = points[first : first + 20].mean(axis=0)
    assert track.opening_arousal == pytest.approx(float(expected[0]), abs=0.05)
    assert track.opening_valence == pytest.approx(float(expected[1]), abs=0.05)


def test_a_stop_after_the_last_file_does_not_say_the_rest_stay_pending(
        album: list[Path], library: Library, music: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A daemon stopped while the last file was analysed logged 'stopped after 3 of 3 files; the
    rest stay pending' although nothing was left."""
    caplog.set_level("INFO", logger="queueemo")
    summary = scan(library, [music], ScanOptions(jobs=1, should_stop=lambda: True))
    assert summary.analysed == 1
    assert "stopped after 1 of 3 files" in caplog.text
    scan(library, [music], ScanOptions(jobs=1, should_stop=lambda: True))
    caplog.clear()
    summary = scan(library, [music], ScanOptions(jobs=1, should_stop=lambda: True))
    assert summary.analysed == 1 and "stopped after" not in caplog.text
