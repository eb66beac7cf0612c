"""``queueemo next`` with its index and play history on a real PostgreSQL server.

The same tests as test_next_command.py, collected again here with ``QUEUEEMO_DB`` pointing at a
fresh PostgreSQL database.
"""

from __future__ import annotations

import pytest

from .test_next_command import (  # noqa: F401  (collected here against PostgreSQL)
    library_with_known_forecast,
    test_dry_run_prints_picks_and_leaves_the_queue_alone,
    test_next_appends_the_track_nearest_to_the_forecast,
    test_recent_plays_are_not_repeated,
)


@pytest.fixture
def queue_env(queue_env: dict[str, str], postgres, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The daemon tests' environment with the index in a PostgreSQL database."""
    url = postgres.new_database()
    monkeypatch.setenv("QUEUEEMO_DB", url)
    return {**queue_env, "QUEUEEMO_DB": url}
