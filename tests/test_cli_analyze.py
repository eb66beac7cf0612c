"""`queueemo analyze` prints summaries or JSON lines, and finishes the other files after a failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "from queueemo.cli import main; main()"]


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_json_lines_per_file_and_errors_do_not_stop_the_rest(tmp_path, make_audio):
    good = make_audio("music/a.wav", seconds=2.0)
    (tmp_path / "music" / "broken.mp3").write_bytes(b"\x00" * 100)
    result = run("analyze", "--json", str(tmp_path / "music"))
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_path = {line["path"]: line for line in lines}
    assert set(by_path) == {str(good), str(tmp_path / "music" / "broken.mp3")}
    record = by_path[str(good)]
    assert record["window_s"] == 0.5 and record["duration_s"] == 2.0
    assert len(record["arousal"]) == len(record["valence"]) == 4
    assert "error" in by_path[str(tmp_path / "music" / "broken.mp3")]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "queueemo: 1 of 2 files could not be analysed"


def test_one_file_that_cannot_be_analysed_is_one_line(tmp_path):
    """`analyze broken.mp3` printed its error, then "1 of 1 files could not be analysed"."""
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"\x00" * 100)
    result = run("analyze", str(broken))
    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"queueemo: {broken}: ")


def test_human_summary_names_duration_and_quadrant(make_audio):
    path = make_audio("b.flac", seconds=5.0)
    result = run("analyze", str(path))
    assert result.returncode == 0, result.stderr
    assert str(path) in result.stdout
    assert "duration 0:05" in result.stdout
    assert "quadrant Q" in result.stdout
    assert "opening  arousal" in result.stdout


def test_help_is_instant_because_heavy_imports_wait():
    result = subprocess.run(
        [sys.executable, "-c",
         "import sys; from queueemo.cli import cli; "
         "print(sorted(m for m in ('torch', 'librosa', 'sqlalchemy') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.stdout.strip() == "[]"


def test_nothing_to_analyse_is_an_error_not_silence(tmp_path):
    result = run("analyze", str(tmp_path))
    assert result.returncode == 1
    assert "no audio files found" in result.stderr


def test_console_script_finds_the_weights_from_any_folder(tmp_path, make_audio):
    script = Path(sys.executable).with_name("queueemo")
    if not script.exists():
        pytest.skip("queueemo is not installed as a console script in this environment")
    path = make_audio("c.wav", seconds=2.0)
    result = subprocess.run([str(script), "analyze", "--json", str(path)], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["arousal"]) == 4


def test_json_gives_the_audible_boundaries_of_a_late_start(tmp_path):
    import numpy as np
    from audiofiles import synth, write_audio

    signal = np.concatenate([np.zeros(3 * 44_100, dtype=np.float32), synth(8, freq=330, noise=0.05)])
    path = write_audio(tmp_path / "late.flac", signal)
    result = run("analyze", "--json", str(path))
    assert result.returncode == 0, result.stderr
    boundaries = json.loads(result.stdout)["boundaries"]
    assert boundaries["sound_start_s"] == pytest.approx(3.0, abs=0.5)
    assert boundaries["ending_start_s"] == pytest.approx(11.0, abs=1.0)
    assert boundaries["opening_lufs"] > -40
