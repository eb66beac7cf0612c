"""The library index: which audio files exist, their tags, and their emotion trajectories.

Public API (everything else in the package is private)::

    lib = open_library(url)                      # create or migrate; DatabaseError if unusable
    lib = open_configured(url, settings.library) # the same, with password_file and named roots
    with lib.session() as session:               # commits at the end (db.py is the only committer)
        load_candidates(session, music_dir)      # → CandidateTable (paths, uris, ..., opening)
        trajectory_at(session, path)             # → (n, 2) float32 of the track at path
        get_track_by_path(session, path)         # → Track | None
        trajectory(track)                        # → (n, 2) float32 at 2 Hz
        library_status(session, model_version)   # → LibraryStatus counts
        failures(session)                        # → [(path, reason)]
        track_record(track)                      # → JSON-ready dict
    scan(lib, roots, ScanOptions(jobs=...), progress=cb)  # → ScanSummary
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from queueemo.library.candidates import load_candidates
    from queueemo.library.db import (
        STATUS_FAILED,
        STATUS_OK,
        STATUS_PENDING,
        Base,
        Library,
        Track,
        open_configured,
        open_library,
    )
    from queueemo.library.queries import (
        display_path,
        failures,
        get_track_by_path,
        library_status,
        track_record,
        trajectory,
        trajectory_at,
    )
    from queueemo.library.scanner import ScanOptions, ScanSummary, scan
    from queueemo.library.summary import LibraryStatus

# Each public name loads its module on first use (PEP 562): ``status`` reads the index through
# ``summary`` without importing SQLAlchemy, which the other modules need.
_SOURCES = {
    "load_candidates": "candidates",
    **dict.fromkeys(("STATUS_FAILED", "STATUS_OK", "STATUS_PENDING", "Base", "Library", "Track",
                     "open_configured", "open_library"), "db"),
    **dict.fromkeys(("display_path", "failures", "get_track_by_path", "library_status", "track_record",
                     "trajectory", "trajectory_at"), "queries"),
    **dict.fromkeys(("ScanOptions", "ScanSummary", "scan"), "scanner"),
    "LibraryStatus": "summary",
}


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"queueemo.library.{_SOURCES[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "STATUS_FAILED",
    "STATUS_OK",
    "STATUS_PENDING",
    "Base",
    "Library",
    "LibraryStatus",
    "ScanOptions",
    "ScanSummary",
    "Track",
    "display_path",
    "failures",
    "get_track_by_path",
    "library_status",
    "load_candidates",
    "open_configured",
    "open_library",
    "scan",
    "track_record",
    "trajectory",
    "trajectory_at",
]
