"""``queueemo next`` against a real MPD, a real index and the real forecaster."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest

from queueemo.library.db import open_library
from queueemo.library.history import record_play

from .conftest import MpdServer, add_song, index_track, run_cli

TAIL = (0.2, 0.1)


def offset(target: np.ndarray, arousal: float, valence: float) -> tuple[float, float]:
    """A point near ``target``, kept inside −1..1."""
    a, v = np.clip(target + np.array([arousal, valence]), -1, 1)
    return float(a), float(v)


def next_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
             ) -> tuple[int, str, str]:
    """Run ``queueemo next ARGS`` in process (the model stays loaded between tests)."""
    from queueemo.cli import main

    monkeypatch.setattr(sys, "argv", ["queueemo", "next", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@pytest.fixture
def library_with_known_forecast(mpd_server: MpdServer, queue_env: dict[str, str], real_forecast):
    """ref.ogg queued; near/mid/far.ogg open at known distances from the forecast after ref.ogg."""
    target = real_forecast(np.array([TAIL] * 10, dtype=np.float32), 1)[0]
    songs = {
        "ref.ogg": ("Ref", TAIL, TAIL),
        "near.ogg": ("Alpha", offset(target, 0.02, 0.0), (-0.5, -0.5)),
        "mid.ogg": ("Beta", offset(target, 0.0, 0.25), (0.5, 0.5)),
        "far.ogg": ("Gamma", tuple(-np.sign(target) * 0.9), (0.0, 0.0)),
    }
    with open_library(queue_env["QUEUEEMO_DB"]) as library:
        for i, (name, (artist, opening, tail)) in enumerate(songs.items()):
            path = add_song(mpd_server.music, name, artist, freq=220.0 * (i + 1))
            index_track(library, path, mpd_server.music, artist=artist, opening=opening, tail=tail)
    mpd_server.update()
    with mpd_server.client() as client:
        client.add("ref.ogg")
    return {**queue_env, "target": target}


def test_next_appends_the_track_nearest_to_the_forecast(library_with_known_forecast, mpd_server,
                                                        capsys, monkeypatch):
    code, out, err = next_cli(capsys, monkeypatch)
    assert (code, out.strip()) == (0, "near.ogg"), err
    assert mpd_server.queue() == ["ref.ogg", "near.ogg"]


def test_dry_run_prints_picks_and_leaves_the_queue_alone(library_with_known_forecast, mpd_server,
                                                         capsys, monkeypatch):
    code, out, err = next_cli(capsys, monkeypatch, "--dry-run", "--json", "-n", "2")
    assert code == 0, err
    picks = [json.loads(line) for line in out.splitlines()]
    assert picks[0]["uri"] == "near.ogg"
    assert picks[1]["reference"] == "near.ogg" and picks[1]["uri"] not in {"near.ogg", "ref.ogg"}
    assert picks[0]["top"][0]["uri"] == "near.ogg"
    assert mpd_server.queue() == ["ref.ogg"]

    code, out, _ = next_cli(capsys, monkeypatch, "--dry-run", "--explain")
    assert code == 0
    assert "follows   ref.ogg" in out and "forecast" in out and "#1" in out
    assert "excluded" in out and "ref.ogg: queued" in out  # queued, not "recently played"
    assert mpd_server.queue() == ["ref.ogg"]


def test_recent_plays_are_not_repeated(library_with_known_forecast, mpd_server, capsys, monkeypatch):
    with open_library(library_with_known_forecast["QUEUEEMO_DB"]) as library:
        record_play(library, "near.ogg", "Somebody", time.time() - 600)
    code, out, err = next_cli(capsys, monkeypatch, "--dry-run")
    assert (code, out.strip()) == (0, "mid.ogg"), err
    monkeypatch.setenv("QUEUEEMO_PICKER_REPEAT_WINDOW_HOURS", "0.1")  # 6 minutes: 10 min ago is fine
    code, out, err = next_cli(capsys, monkeypatch, "--dry-run")
    assert (code, out.strip()) == (0, "near.ogg"), err


def test_artist_spacing_is_honoured(library_with_known_forecast, mpd_server, capsys, monkeypatch):
    with mpd_server.client() as client:
        client.clear()
        client.add("near.ogg")  # Alpha is queued…
        client.add("ref.ogg")  # …then ref.ogg, whose forecast points at Alpha's near.ogg
    target = library_with_known_forecast["target"]
    with open_library(library_with_known_forecast["QUEUEEMO_DB"]) as library:
        path = add_song(mpd_server.music, "alpha2.ogg", "alpha")  # same artist, other case
        index_track(library, path, mpd_server.music, artist="alpha",
                    opening=offset(target, 0.01, 0.0), tail=TAIL)
    mpd_server.update()
    code, out, err = next_cli(capsys, monkeypatch, "--dry-run", "-n", "2")
    assert code == 0, err
    assert out.splitlines()[0] == "mid.ogg" and "alpha2.ogg" not in out
    monkeypatch.setenv("QUEUEEMO_PICKER_ARTIST_SPACING", "0")
    code, out, err = next_cli(capsys, monkeypatch, "--dry-run")
    assert (code, out.strip()) == (0, "alpha2.ogg"), err


def test_unreachable_mpd_is_one_line_and_exit_1(tmp_path):
    open_library(f"sqlite:///{tmp_path / 'i.sqlite3'}").close()  # an index, so MPD is what is missing
    result = run_cli("next", env={"MPD_HOST": str(tmp_path / "nothing.sock"),
                                  "QUEUEEMO_DB": f"sqlite:///{tmp_path / 'i.sqlite3'}",
                                  "XDG_CONFIG_HOME": str(tmp_path)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot connect to MPD" in lines[0], result.stderr
