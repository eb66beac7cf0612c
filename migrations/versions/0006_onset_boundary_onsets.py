"""Onset density of each track's opening and ending; the change-log trigger watches them too.

Revision ID: 0006_onset_boundary_onsets
Revises: 0005_scale_track_changes
Create Date: 2026-11-26

Plain ``ADD COLUMN`` (no batch rebuild of ``tracks``, which would drop the triggers of 0005 on
SQLite). The UPDATE trigger names the columns it watches, so it is dropped and created again with
the new ones on both dialects. Tracks analysed before have NULL onsets: the scan analyses them again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_onset_boundary_onsets"
down_revision: str | None = "0005_scale_track_changes"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = ("opening_onsets", "ending_onsets")
_WATCHED_0005 = ("path", "rel_path", "status", "artist", "albumartist", "album", "title", "genre",
                 "opening_arousal", "opening_valence", "duration_s", "ending_start_s", "opening_lufs",
                 "ending_lufs", "opening_brightness", "ending_brightness")
_NAME = "tracks_changed_update"
_CONDITION = "OLD.status = 'ok' OR NEW.status = 'ok'"


def _create_trigger(watched: tuple[str, ...]) -> None:
    event = f"UPDATE OF {', '.join(watched)}"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE TRIGGER {_NAME} AFTER {event} ON tracks FOR EACH ROW "
                   f"WHEN ({_CONDITION}) EXECUTE FUNCTION {_NAME}()")
    else:
        op.execute(f"CREATE TRIGGER {_NAME} AFTER {event} ON tracks FOR EACH ROW "
                   f"WHEN {_CONDITION} BEGIN INSERT INTO track_changes (track_id) VALUES (NEW.id); END")


def _drop_trigger() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.execute(f"DROP TRIGGER {_NAME} ON tracks" if postgresql else f"DROP TRIGGER {_NAME}")


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column("tracks", sa.Column(name, sa.Float(), nullable=True))
    _drop_trigger()  # on PostgreSQL its function stays: the new trigger calls it
    _create_trigger(_WATCHED_0005 + _COLUMNS)


def downgrade() -> None:
    _drop_trigger()
    _create_trigger(_WATCHED_0005)
    for name in reversed(_COLUMNS):
        op.drop_column("tracks", name)
