"""Fixtures for the library tests: a real SQLite file or PostgreSQL database, and short real audio files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from queueemo.library import Library, ScanOptions, ScanSummary, open_library, scan


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every library test runs on a SQLite file and on a fresh database of a real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'library.sqlite3'}"
        return
    if request.node.get_closest_marker("sqlite_only"):
        pytest.skip("SQLite-specific behaviour")
    server = request.getfixturevalue("postgres")
    url = server.new_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def library(db_url: str) -> Iterator[Library]:
    lib = open_library(db_url)
    yield lib
    lib.close()


@pytest.fixture
def music(tmp_path: Path) -> Path:
    folder = tmp_path / "music"
    folder.mkdir()
    return folder


@pytest.fixture
def rescan(library: Library, music: Path) -> Callable[..., ScanSummary]:
    """Scan ``music`` in process (``jobs=1``) with the real model: ``rescan()`` → summary."""

    def run(*roots: Path, **options) -> ScanSummary:
        return scan(library, roots or (music,), ScanOptions(jobs=1, **options))

    return run
