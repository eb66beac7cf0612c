"""The analysis worker pool: how workers start, and that a real scan through them matches one in process."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from queueemo.audio import WindowObserver
from queueemo.library import Library, ScanOptions, Track, scan
from queueemo.library.analysis import ModelAnalyser, Workers, default_jobs, worker_context

# Set by ``_Probe.warm_up`` in a worker: what that worker had imported before it did anything.
_SEEN_AT_START: dict[str, float] = {}


@dataclass(frozen=True)
class _Probe:
    """An analyser that reports, as its trajectory, what its worker process looked like at start-up."""

    owner: int

    def warm_up(self) -> None:
        _SEEN_AT_START["torch"] = float("torch" in sys.modules)
        _SEEN_AT_START["forked"] = float(os.getppid() != self.owner)

    def __call__(self, path: str, *, observe: WindowObserver | None = None) -> np.ndarray:
        return np.array([[_SEEN_AT_START["torch"], _SEEN_AT_START["forked"]]], dtype=np.float32)


def test_workers_are_forked_from_a_server_that_imported_torch(make_audio: Callable[..., Path]) -> None:
    assert worker_context().get_start_method() == "forkserver"
    paths = [make_audio(f"{i}.wav", seconds=1) for i in range(4)]
    with Workers(_Probe(os.getpid()), jobs=2) as workers:
        outcomes = list(workers.run([(i, str(path)) for i, path in enumerate(paths)]))
    assert len(outcomes) == 4
    for outcome in outcomes:
        assert outcome.error is None
        assert outcome.trajectory.tolist() == [[1.0, 1.0]]  # torch preloaded; parent: the server


@dataclass(frozen=True)
class _TorchFreeProbe(ModelAnalyser):
    """The v2-lite analyser, reporting after a real analysis whether its worker ever imported torch."""

    def __call__(self, path: str, *, observe: WindowObserver | None = None) -> np.ndarray:
        trajectory = super().__call__(path, observe=observe)
        return np.full_like(trajectory, float("torch" in sys.modules))


def test_a_v2_lite_worker_never_imports_torch(make_audio: Callable[..., Path]) -> None:
    path = make_audio("one.wav", seconds=2)
    with Workers(_TorchFreeProbe("v2-lite"), jobs=2, fork_server=False) as workers:
        outcomes = list(workers.run([(0, str(path))]))
    assert outcomes[0].error is None
    assert outcomes[0].trajectory.tolist() == [[0.0, 0.0]] * 4


def test_the_daemons_workers_are_spawned_so_no_server_outlives_a_batch(
        make_audio: Callable[..., Path]) -> None:
    path = make_audio("one.wav", seconds=1)
    with Workers(_Probe(os.getpid()), jobs=2, fork_server=False) as workers:
        outcomes = list(workers.run([(0, str(path))]))
    assert outcomes[0].trajectory[0, 1] == 0.0  # its parent is this process, not a server


@pytest.mark.sqlite_only
def test_a_scan_through_forked_workers_equals_one_in_process(library: Library, music: Path,
                                                             make_audio: Callable[..., Path],
                                                             tmp_path: Path) -> None:
    from queueemo.library import open_library

    for i in range(6):
        make_audio(f"music/{i}.ogg", seconds=4 + i, freq=200 + 60 * i, pulse_hz=1 + i)
    pooled = scan(library, [music], ScanOptions(jobs=2, small_scans_in_process=False,
                                                analyse=ModelAnalyser("v2")))
    here = open_library(f"sqlite:///{tmp_path / 'here.sqlite3'}")
    in_process = scan(here, [music], ScanOptions(jobs=1, analyse=ModelAnalyser("v2")))
    assert pooled.analysed == in_process.analysed == 6

    def trajectories(index: Library) -> dict[str, bytes]:
        with index.session() as session:
            return {track.path: track.trajectory for track in session.query(Track)}

    assert trajectories(library) == trajectories(here)


def test_more_workers_than_twice_the_cpus_are_capped_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="queueemo.library.analysis"):
        many = Workers(_Probe(os.getpid()), jobs=1000)
    assert many.jobs == 2 * default_jobs()
    assert "1000 worker processes asked for" in caplog.text
    caplog.clear()
    assert Workers(_Probe(os.getpid()), jobs=2 * default_jobs()).jobs == 2 * default_jobs()
    assert Workers(_Probe(os.getpid()), jobs=0).jobs == 1
    assert caplog.text == ""
