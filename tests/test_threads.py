"""Every analysis path runs torch on the thread count chosen in queueemo.threads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import queueemo
from queueemo.emotion import inference_v2
from queueemo.threads import ANALYSIS_THREADS


@pytest.fixture
def threads_seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Torch's thread count at each real analysis by the default (v2) model; the caller's count is 2
    and restored afterwards."""
    seen: list[int] = []
    real = inference_v2.analyze_file_v2

    def analyze_file_v2(path, model_dir=None, **options) -> np.ndarray:
        seen.append(torch.get_num_threads())
        return real(path, model_dir, **options)

    monkeypatch.setattr(inference_v2, "analyze_file_v2", analyze_file_v2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield seen
    torch.set_num_threads(before)


def test_analyze_uses_the_analysis_threads_and_restores_the_callers(
    threads_seen: list[int], make_audio: Callable[..., Path]
) -> None:
    trajectory = queueemo.analyze(make_audio("a.wav", seconds=2))
    assert trajectory.shape == (4, 2)
    assert threads_seen == [ANALYSIS_THREADS]
    assert torch.get_num_threads() == 2


def test_analyze_command_uses_the_analysis_threads(threads_seen: list[int],
                                                   make_audio: Callable[..., Path]) -> None:
    from queueemo.cli import cli

    files = [make_audio("a.wav", seconds=1), make_audio("b.flac", seconds=1)]
    result = CliRunner().invoke(cli, ["analyze", *map(str, files)])
    assert result.exit_code == 0, result.output
    assert threads_seen == [ANALYSIS_THREADS, ANALYSIS_THREADS]
