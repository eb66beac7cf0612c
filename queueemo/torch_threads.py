"""How many threads torch uses while analysing audio: one setting, used by every analysis path.

Analysis runs small matrix products window by window, where extra threads mostly wait on each other:
on a busy 2-core machine a 410-s track took 5.4 s with one thread and 18.5 s with two
(``bench/threads.py``). Scans get their parallelism from worker processes instead, one thread each.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

ANALYSIS_THREADS = 1


def set_analysis_threads(threads: int = ANALYSIS_THREADS) -> int:
    """Make torch use ``threads`` intra-op threads from now on; returns the previous count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    return previous


@contextmanager
def analysis_threads(threads: int = ANALYSIS_THREADS) -> Iterator[None]:
    """Run the block with ``threads`` torch threads, then restore the caller's setting."""
    previous = set_analysis_threads(threads)
    try:
        yield
    finally:
        set_analysis_threads(previous)
