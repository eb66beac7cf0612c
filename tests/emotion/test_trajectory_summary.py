"""Pure summaries of a trajectory."""

from __future__ import annotations

import pytest

from queueemo.emotion.summary import block_means


def test_block_means_condense_runs_of_windows_and_keep_a_short_last_run() -> None:
    arousal = [0.0, 1.0, 0.5, 0.5, -1.0]
    valence = [1.0, 1.0, -1.0, 0.0, 0.25]
    blocks = block_means(arousal, valence, 2)
    assert [start for start, _, _ in blocks] == [0, 2, 4]
    assert [(a, v) for _, a, v in blocks] == [(0.5, 1.0), (0.5, -0.5), (-1.0, 0.25)]
    assert block_means([], [], 10) == []


def test_a_block_is_as_long_as_asked() -> None:
    blocks = block_means([0.1] * 25, [0.2] * 25, 10)
    assert len(blocks) == 3 and blocks[-1][0] == 20
    assert blocks[0][1:] == pytest.approx((0.1, 0.2))
