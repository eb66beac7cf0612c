"""How many threads analysis uses: one setting for torch's intra-op pool and numpy's BLAS.

Analysis runs small matrix products window by window, where extra threads mostly wait on each other:
on a busy 2-core machine a 410-s track took 5.4 s with one thread and 18.5 s with two
(``bench/threads.py``). Scans get their parallelism from worker processes instead, one thread each.
A backend that runs without torch (``uses_torch`` false) is not made to import it here; its BLAS
(OpenBLAS under numpy, limited through threadpoolctl) would otherwise start a thread per core in every
worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

ANALYSIS_THREADS = 1


def set_analysis_threads(threads: int = ANALYSIS_THREADS, *, torch: bool = True) -> None:
    """From now on, BLAS and (if ``torch``) torch use ``threads`` threads in this process."""
    import numpy  # noqa: F401  (threadpoolctl limits the BLAS libraries loaded so far: load numpy's)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads, user_api="blas")
    if torch:
        import torch as torch_module

        torch_module.set_num_threads(threads)


@contextmanager
def analysis_threads(threads: int = ANALYSIS_THREADS, *, torch: bool = True) -> Iterator[None]:
    """Run the block with ``threads`` BLAS (and, if ``torch``, torch) threads, then restore the caller's."""
    import numpy  # noqa: F401  (see set_analysis_threads)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads, user_api="blas"):
        if not torch:
            yield
            return
        import torch as torch_module

        previous = torch_module.get_num_threads()
        torch_module.set_num_threads(threads)
        try:
            yield
        finally:
            torch_module.set_num_threads(previous)
