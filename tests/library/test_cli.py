"""``queueemo scan``, ``status`` and ``show`` as a user runs them."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from queueemo.cli import cli, main

pytestmark = pytest.mark.usefixtures("clip_model")


@pytest.fixture
def scanned(make_audio: Callable[..., Path], music: Path, db_url: str) -> list[Path]:
    files = [make_audio("music/calm.flac", seconds=2, freq=220),
             make_audio("music/busy.mp3", seconds=3, freq=880, pulse_hz=6)]
    (music / "broken.ogg").write_text("not audio")
    result = CliRunner().invoke(cli, ["scan", str(music), "--jobs", "1", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == (
        "analysed 2, unchanged 0, moved 0, removed 0, failed 1 (why: queueemo status --failed)")
    return files


def test_db_takes_a_file_path_and_refuses_a_url_that_lost_a_slash(make_audio: Callable[..., Path],
                                                                  music: Path, tmp_path: Path) -> None:
    make_audio("music/calm.flac", seconds=2, freq=220)
    index = tmp_path / "index.sqlite3"
    result = CliRunner().invoke(cli, ["scan", str(music), "--jobs", "1", "--db", str(index)])
    assert result.exit_code == 0 and index.is_file(), result.output
    result = CliRunner().invoke(cli, ["status", "--db", f"sqlite:{index}"])
    assert result.exit_code == 2 and "is not a database URL" in result.output


def test_status_counts_tracks(scanned: list[Path], db_url: str) -> None:
    result = CliRunner().invoke(cli, ["status", "--db", db_url])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert lines["analysed"].startswith("2 ")
    assert lines["pending"] == "0"
    assert lines["failed"].startswith("1 ")
    assert lines["total"].startswith("3 ")
    assert "outdated" not in lines  # analysed by this model and analysis format: current


def test_status_after_a_model_change_does_not_call_it_an_older_model(scanned: list[Path], db_url: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Choosing v2-lite made `status` call the v2 analyses "older model"; it is another model."""
    monkeypatch.setenv("QUEUEEMO_EMOTION_MODEL", "v2-lite")
    result = CliRunner().invoke(cli, ["status", "--db", db_url])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if line.startswith("outdated")]
    assert line.split()[1] == "2" and "another model or an older queueemo" in line
    result = CliRunner().invoke(cli, ["status", "--db", db_url, "--model", "v2"])  # as scanned
    assert result.exit_code == 0 and "outdated" not in result.stdout, result.output


def test_status_failed_lists_reasons(scanned: list[Path], music: Path, db_url: str) -> None:
    result = CliRunner().invoke(cli, ["status", "--failed", "--db", db_url])
    assert result.exit_code == 0
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{music / 'broken.ogg'}: ")


def test_status_failed_says_so_when_nothing_failed(make_audio: Callable[..., Path], music: Path,
                                                   db_url: str) -> None:
    """It printed nothing at all: a user could not tell "none failed" from "wrong index"."""
    make_audio("music/calm.flac", seconds=2, freq=220)
    assert CliRunner().invoke(cli, ["scan", str(music), "--jobs", "1", "--db", db_url]).exit_code == 0
    result = CliRunner().invoke(cli, ["status", "--failed", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("no failed files in ")


def test_show_prints_tags_summaries_and_trajectory(scanned: list[Path], db_url: str) -> None:
    result = CliRunner().invoke(cli, ["show", str(scanned[1]), "--db", db_url])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == str(scanned[1])
    for word in ("duration", "opening", "closing", "trajectory", "arousal", "valence"):
        assert word in result.stdout
    assert re.search(r"onsets +opening \d+\.\d/s, ending \d+\.\d/s", result.stdout)


def test_show_of_a_track_analysed_before_onsets_leaves_them_out(scanned: list[Path], db_url: str) -> None:
    import sqlalchemy as sa

    from queueemo.library import Track, open_library

    with open_library(db_url) as library, library.session() as session:
        session.execute(sa.update(Track).values(opening_onsets=None, ending_onsets=None))
    result = CliRunner().invoke(cli, ["show", str(scanned[1]), "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "brightness" in result.stdout and "onsets" not in result.stdout
    record = json.loads(CliRunner().invoke(cli, ["show", str(scanned[1]), "--json", "--db", db_url]).stdout)
    assert record["boundaries"]["opening_onsets"] is None


def test_show_json_has_every_point(scanned: list[Path], db_url: str) -> None:
    result = CliRunner().invoke(cli, ["show", str(scanned[0]), "--json", "--db", db_url])
    record = json.loads(result.stdout)
    assert record["path"] == str(scanned[0]) and record["status"] == "ok"
    assert len(record["arousal"]) == len(record["valence"]) == 4
    assert set(record["opening"]) == {"arousal", "valence"}


def test_unknown_track_is_one_line_and_exit_1(scanned: list[Path], db_url: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["queueemo", "show", str(tmp_path / "nope.mp3"), "--db", db_url])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not in the library" in err


def test_db_from_the_environment_is_used(scanned: list[Path], db_url: str) -> None:
    result = CliRunner(env={"QUEUEEMO_DB": db_url}).invoke(cli, ["status"])
    assert "total           3" in result.stdout


@pytest.mark.sqlite_only  # the second index is a second SQLite file
def test_a_rescan_with_nothing_to_analyse_starts_no_workers(scanned: list[Path], music: Path, db_url: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="queueemo")
    starting = "starting the workers' forkserver"
    rescan = CliRunner().invoke(cli, ["-vv", "scan", str(music), "--jobs", "2", "--db", db_url])
    assert rescan.exit_code == 0, rescan.output
    assert rescan.stdout.strip().splitlines()[-1].startswith("analysed 0, unchanged 2,")
    assert starting not in caplog.text
    first = CliRunner().invoke(cli, ["-vv", "scan", str(music), "--jobs", "2", "--db", f"{db_url}-new"])
    assert first.exit_code == 0, first.output
    assert starting in caplog.text  # a new index: the server warms up while it opens


@pytest.mark.sqlite_only
@pytest.mark.parametrize("command", [["status"], ["status", "--failed"], ["show", "a.flac"], ["next"],
                                     ["path", "a.flac", "b.flac"], ["plot", "a.flac", "-o", "x.png"]])
def test_commands_that_read_the_index_do_not_create_a_missing_one(
        command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A typo in --db used to create an empty index (and its folders) and report 'total 0'."""
    typo = tmp_path / "no" / "such" / "index.sqlite3"
    monkeypatch.setattr(sys, "argv", ["queueemo", *command, "--db", f"sqlite:///{typo}"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no index at {typo}: run `queueemo scan` first" in err
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("lease", ["nan", "inf", "1e12", "0"])
def test_a_lease_that_is_not_a_sane_number_of_seconds_is_refused(lease: str, tmp_path: Path) -> None:
    """--lease nan, inf and 1e12 passed the check (>= 1) and the first claim crashed with a traceback
    (ValueError / OverflowError in timedelta)."""
    result = CliRunner().invoke(cli, ["scan", "--worker", "--lease", lease, "--db", str(tmp_path / "i.db"),
                                      str(tmp_path)])
    assert result.exit_code == 2 and "Invalid value for '--lease'" in result.output, result.output
