"""``next --from/--arc``, ``path`` and ``plot`` against a real MPD and a real index."""

from __future__ import annotations

import json

import pytest

from .test_next_command import library_with_known_forecast, next_cli  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("library_with_known_forecast")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def cli(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    import sys

    from queueemo.cli import main

    monkeypatch.setattr(sys, "argv", ["queueemo", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_malformed_arc_is_one_line_with_the_accepted_forms(capsys,
                                                           monkeypatch):
    code, out, err = next_cli(capsys, monkeypatch, "--arc", "calm", "--dry-run")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "accepted forms" in err
    code, _, err = next_cli(capsys, monkeypatch, "--arc", "calm:2,0", "--dry-run")
    assert code == 1 and "outside" in err


def test_minutes_without_an_arc_is_one_line(mpd_server, capsys, monkeypatch):
    """`next --minutes 30` was silently one flow pick: the minutes were ignored without an --arc."""
    code, out, err = next_cli(capsys, monkeypatch, "--minutes", "30", "--dry-run")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "--minutes is the length of an --arc" in err


def test_a_dry_run_does_not_start_the_configured_arc(mpd_server, tmp_path, capsys, monkeypatch):
    """A preview (`next --dry-run` in arc mode) started the arc's clock: the daemon started later
    found the arc half over, or over."""
    state = tmp_path / "arc.json"
    monkeypatch.setenv("QUEUEEMO_PICKER_MODE", "arc")
    monkeypatch.setenv("QUEUEEMO_PICKER_ARC", "sad:happy")
    monkeypatch.setenv("QUEUEEMO_PICKER_ARC_STATE_FILE", str(state))
    code, out, err = next_cli(capsys, monkeypatch, "--dry-run", "--explain")
    assert code == 0, err
    assert "target    (arousal -0.50, valence -0.50)" in out and not state.exists()
    code, _, err = next_cli(capsys, monkeypatch)
    assert code == 0 and state.exists(), err


def test_arc_targets_are_explained(capsys, monkeypatch):
    code, out, err = next_cli(capsys, monkeypatch, "--arc", "sad:happy", "--minutes", "10",
                              "--dry-run", "--explain")
    assert code == 0, err
    assert "target" in out and "(arousal -0.50, valence -0.50)" in out  # the arc's start


def test_from_follows_the_given_song_and_unknown_songs_are_one_line(
        mpd_server, capsys, monkeypatch, caplog):
    code, out, err = next_cli(capsys, monkeypatch, "--from", "far.ogg", "--dry-run", "--explain")
    assert code == 0, err
    assert "follows   far.ogg" in out
    code, out, err = next_cli(capsys, monkeypatch, "--from", str(mpd_server.music / "far.ogg"),
                              "--dry-run", "--explain")
    assert code == 0 and "follows   far.ogg" in out, err
    code, _, err = next_cli(capsys, monkeypatch, "--from", "nowhere.ogg", "--dry-run")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "unknown song" in err
    assert "does not know" not in caplog.text  # the error says it all: no warning line before it


def test_from_never_picks_the_followed_song(mpd_server, capsys, monkeypatch):
    """`next --from X -n 3` picked X itself: the followed song counts as just played."""
    code, out, err = next_cli(capsys, monkeypatch, "--from", "far.ogg", "-n", "3", "--dry-run",
                              "--json")
    assert code == 0, err
    uris = [json.loads(line)["uri"] for line in out.splitlines()]
    assert uris and "far.ogg" not in uris and "ref.ogg" not in uris


def test_path_ends_on_its_destination(mpd_server, capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, "path", "ref.ogg", "far.ogg", "-n", "3")
    assert code == 0, err
    lines = out.split()
    assert len(lines) == 3 and lines[-1] == "far.ogg" and "ref.ogg" not in lines  # ref ends the queue
    assert mpd_server.queue() == ["ref.ogg", *lines]
    code, _, err = cli(capsys, monkeypatch, "path", "ref.ogg", "missing.ogg")
    assert code == 1 and "unknown song" in err


def test_a_path_from_a_song_to_itself_is_one_line(mpd_server, capsys, monkeypatch):
    """`path ref.ogg ref.ogg` queued the song at both ends, twice within the repeat window."""
    code, out, err = cli(capsys, monkeypatch, "path", "ref.ogg", str(mpd_server.music / "ref.ogg"),
                         "-n", "3")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "FROM and TO are the same song" in err
    assert mpd_server.queue() == ["ref.ogg"]


def test_path_explains_its_ends_as_named_not_picked(mpd_server, capsys, monkeypatch):
    """FROM was explained as "a random allowed track", TO with a distance of 0 in every term."""
    with mpd_server.client() as client:
        client.clear()
    code, out, err = cli(capsys, monkeypatch, "path", "ref.ogg", "far.ogg", "-n", "2", "--dry-run",
                         "--explain")
    assert code == 0, err
    assert out.startswith("ref.ogg\n  given     the path's start (FROM)")
    assert "random" not in out.split("\n", 2)[1]
    end = out[out.rindex("\nfar.ogg\n"):]
    assert "given     the path's end (TO)" in end and "distance" not in end and "#1" not in end
    code, out, _ = cli(capsys, monkeypatch, "path", "ref.ogg", "far.ogg", "-n", "2", "--dry-run", "--json")
    bases = [json.loads(line)["basis"] for line in out.splitlines()]
    assert bases[0] == bases[-1] == "given" and bases[1] == "target"


def test_the_configured_seed_track_is_explained_as_such(mpd_server, capsys, monkeypatch):
    with mpd_server.client() as client:
        client.clear()
    monkeypatch.setenv("QUEUEEMO_PICKER_SEED_TRACK", "mid.ogg")
    code, out, err = next_cli(capsys, monkeypatch, "--dry-run", "--explain")
    assert code == 0, err
    assert out.startswith("mid.ogg\n  given     [picker] seed_track (nothing to follow)")


def test_plot_writes_png_files(mpd_server, tmp_path, capsys,
                               monkeypatch, caplog):
    pytest.importorskip("matplotlib")
    out = tmp_path / "tracks.png"
    code, _, err = cli(capsys, monkeypatch, "plot", str(mpd_server.music / "ref.ogg"),
                       str(mpd_server.music / "near.ogg"), "-o", str(out))
    assert code == 0, err
    assert out.read_bytes()[:8] == PNG_SIGNATURE and out.stat().st_size > 5000
    with mpd_server.client() as client:
        client.add("near.ogg")
        client.add("far.ogg")
    queue = tmp_path / "queue.png"
    code, _, err = cli(capsys, monkeypatch, "plot", "--queue", "-o", str(queue))
    assert code == 0, err
    assert queue.read_bytes()[:8] == PNG_SIGNATURE
    code, _, err = cli(capsys, monkeypatch, "plot", str(tmp_path / "nothing.ogg"), "-o", str(out))
    assert code == 1 and "none of the files" in err
    assert len(err.strip().splitlines()) == 1 and "skipped" not in caplog.text  # the error says it all


def test_plot_into_a_missing_folder_is_one_line(mpd_server, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    out = tmp_path / "no such folder" / "tracks.png"
    code, _, err = cli(capsys, monkeypatch, "plot", str(mpd_server.music / "ref.ogg"), "-o", str(out))
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"cannot write {out}: No such file or directory" in err


def test_boundary_loudness_from_the_index_steers_the_pick(queue_env, mpd_server, capsys, monkeypatch):
    import sqlalchemy as sa

    from queueemo.library.db import Track, open_library

    levels = {"ref.ogg": -10.0, "near.ogg": -30.0, "mid.ogg": -10.5, "far.ogg": -30.0}
    with open_library(queue_env["QUEUEEMO_DB"]) as library, library.session() as s:
        for name, level in levels.items():
            s.execute(sa.update(Track).where(Track.path == str(mpd_server.music / name)).values(
                opening_lufs=level, ending_lufs=level, opening_brightness=1000.0,
                ending_brightness=1000.0, opening_onsets=2.0, ending_onsets=2.0, ending_start_s=2.0,
                album="One", title=name))
    code, out, err = next_cli(capsys, monkeypatch, "--dry-run")
    assert (code, out.strip()) == (0, "mid.ogg"), err  # default weights: near.ogg is 20 LU quieter
    monkeypatch.setenv("QUEUEEMO_PICKER_LOUDNESS_WEIGHT", "0")
    monkeypatch.setenv("QUEUEEMO_PICKER_BRIGHTNESS_WEIGHT", "0")
    code, out, err = next_cli(capsys, monkeypatch, "--dry-run", "--explain")
    assert code == 0 and out.startswith("near.ogg"), err
    assert "jump      loudness -20.0 LU" in out


def test_nothing_to_pick_counts_the_reasons(mpd_server, capsys, monkeypatch):
    monkeypatch.setenv("QUEUEEMO_PICKER_EXCLUDE_GLOBS", "*.ogg")
    code, out, err = next_cli(capsys, monkeypatch, "--dry-run")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "nothing to pick" in err and "(4 excluded path)" in err  # a static reason before "queued"


def test_a_failed_reference_is_explained_as_failed_without_distances(queue_env, mpd_server, capsys,
                                                                      monkeypatch):
    from queueemo.library.db import STATUS_FAILED, Track, open_library

    from .conftest import add_song

    path = add_song(mpd_server.music, "broken.ogg", "Delta")
    with open_library(queue_env["QUEUEEMO_DB"]) as library, library.session() as session:
        stat = path.stat()
        session.add(Track(path=str(path), root=str(mpd_server.music), rel_path="broken.ogg",
                          size=stat.st_size, mtime_ns=stat.st_mtime_ns, status=STATUS_FAILED,
                          error="not decodable audio (test)"))
    mpd_server.update()
    with mpd_server.client() as client:
        client.clear()
        client.add("broken.ogg")
    code, out, err = next_cli(capsys, monkeypatch, "--dry-run", "--explain")
    assert code == 0, err
    assert "broken.ogg is a track whose analysis failed (not decodable audio (test))" in out
    assert "not in the index" not in out and "#1" not in out and "distance  " not in out


def test_nothing_to_pick_after_an_unindexed_song_is_one_line(mpd_server, capsys, monkeypatch, caplog):
    """A new user who has not scanned yet: the warning about following a random track came before
    the error saying that there is nothing to pick at all."""
    from .conftest import add_song

    add_song(mpd_server.music, "stranger.ogg", "Epsilon")
    mpd_server.update()
    with mpd_server.client() as client:
        client.add("stranger.ogg")
    monkeypatch.setenv("QUEUEEMO_PICKER_EXCLUDE_GLOBS", "*.ogg")
    code, out, err = next_cli(capsys, monkeypatch, "--dry-run")
    assert code == 1 and out == "" and "nothing to pick" in err
    assert "random track" not in caplog.text
    monkeypatch.delenv("QUEUEEMO_PICKER_EXCLUDE_GLOBS")
    code, out, err = next_cli(capsys, monkeypatch, "--dry-run")
    assert code == 0, err
    assert "stranger.ogg is not in the index; following it with a random track" in caplog.text


def test_the_queue_plot_names_its_tracks(mpd_server, tmp_path, capsys, monkeypatch):
    """The queue's picture numbered its tracks without saying which track each number was."""
    pytest.importorskip("matplotlib")
    import queueemo.plot

    texts: list[str] = []
    save = queueemo.plot._save

    def save_and_read(plt, figure, out):
        texts.extend(t.get_text() for axis in figure.axes for t in axis.texts)
        save(plt, figure, out)

    monkeypatch.setattr(queueemo.plot, "_save", save_and_read)
    with mpd_server.client() as client:
        client.add("near.ogg")
    code, _, err = cli(capsys, monkeypatch, "plot", "--queue", "-o", str(tmp_path / "queue.png"))
    assert code == 0, err
    assert {"1 ref.ogg", "2 near.ogg"} <= set(texts)


def test_fewer_picks_than_asked_are_said(mpd_server, capsys, monkeypatch, caplog):
    """`next -n 65` on a 60-track library printed 56 tracks, exit 0, and no word about the rest."""
    code, out, err = next_cli(capsys, monkeypatch, "-n", "10", "--dry-run")
    assert code == 0, err
    picked = len(out.split())
    assert 0 < picked < 10
    assert f"only {picked} of 10 tracks could be picked" in caplog.text


def test_an_arc_target_counts_what_is_left_of_the_current_song(mpd_server, capsys, monkeypatch):
    """The first pick starts once the current song ends: its target lies that far along the arc."""
    import re
    import time

    import numpy as np

    from queueemo.arc import parse_arc

    with mpd_server.client() as client:
        client.play(0)  # ref.ogg, 2 s in the index, played a little, then paused
        deadline = time.monotonic() + 3
        while float(client.status().get("elapsed", 0)) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.05)
        client.pause(1)
        elapsed = float(client.status()["elapsed"])
    assert 0.4 <= elapsed < 2.0
    code, out, err = next_cli(capsys, monkeypatch, "--arc", "sad:happy", "--minutes", "0.1",
                              "--dry-run", "--explain")
    assert code == 0, err
    arousal, valence = map(float, re.search(r"target +\(arousal ([-+.\d]+), valence ([-+.\d]+)\)",
                                            out).groups())
    expected = parse_arc("sad:happy", 0.1).target(2.0 - elapsed)
    assert np.allclose([arousal, valence], expected, atol=0.011)
    assert not np.allclose(expected, parse_arc("sad:happy", 0.1).target(0.0), atol=0.05)


def test_following_a_song_whose_analysis_failed_says_why(mpd_server, tmp_path, capsys, monkeypatch):
    """It used to say only "unknown song"."""
    import os

    from queueemo.library import Track, open_library

    broken = tmp_path / "elsewhere" / "broken.ogg"
    broken.parent.mkdir()
    broken.write_text("not audio")
    with open_library(os.environ["QUEUEEMO_DB"]) as library, library.session() as session:
        session.add(Track(path=str(broken), root=str(broken.parent), rel_path="broken.ogg", size=9,
                          mtime_ns=1, status="failed", error="not an audio file (format not recognised)"))
    code, _, err = next_cli(capsys, monkeypatch, "--from", str(broken), "--dry-run")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "analysis failed (not an audio file (format not recognised))" in err


@pytest.mark.parametrize("command", [["next", "--arc", "sad:happy"], ["path", "a.ogg", "b.ogg"]])
@pytest.mark.parametrize("minutes", ["nan", "inf", "20000"])
def test_minutes_that_are_not_a_sane_length_are_refused(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        command: list[str], minutes: str) -> None:
    """nan passed click's range check (nan <= 0 is false) and reached the arc's arithmetic."""
    code, _out, err = cli(capsys, monkeypatch, *command, "--minutes", minutes, "--dry-run")
    assert code == 2
    assert "--minutes" in err
