"""A log of candidate changes, written by triggers, so the daemon reloads only what changed.

Revision ID: 0005_scale_track_changes
Revises: 0004_scan_claims
Create Date: 2026-11-25

A row is logged when a track is inserted or deleted as analysed, or when a column the picker reads
changes on a track that is or was analysed. SQLite and PostgreSQL spell triggers differently; the
statements below are the only dialect-specific SQL of the schema. (SQLite drops a table's triggers
when a later batch migration rebuilds ``tracks``: such a migration must create them again.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_scale_track_changes"
down_revision: str | None = "0004_scan_claims"
branch_labels: str | None = None
depends_on: str | None = None

WATCHED = ("path", "rel_path", "status", "artist", "albumartist", "album", "title", "genre",
           "opening_arousal", "opening_valence", "duration_s", "ending_start_s", "opening_lufs",
           "ending_lufs", "opening_brightness", "ending_brightness")
_EVENTS = {  # trigger name suffix → (event, condition, id)
    "insert": ("INSERT", "NEW.status = 'ok'", "NEW.id"),
    "update": (f"UPDATE OF {', '.join(WATCHED)}", "OLD.status = 'ok' OR NEW.status = 'ok'", "NEW.id"),
    "delete": ("DELETE", "OLD.status = 'ok'", "OLD.id"),
}


def upgrade() -> None:
    bigint = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    op.create_table(
        "track_changes",
        sa.Column("seq", bigint, primary_key=True),
        sa.Column("track_id", bigint, nullable=False),
        sqlite_autoincrement=True,
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    for suffix, (event, condition, track) in _EVENTS.items():
        name = f"tracks_changed_{suffix}"
        if postgresql:
            op.execute(f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN INSERT INTO track_changes (track_id) VALUES ({track}); RETURN NULL; END $$""")
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON tracks FOR EACH ROW "
                       f"WHEN ({condition}) EXECUTE FUNCTION {name}()")
        else:
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON tracks FOR EACH ROW "
                       f"WHEN {condition} BEGIN INSERT INTO track_changes (track_id) VALUES ({track}); END")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for suffix in _EVENTS:
        name = f"tracks_changed_{suffix}"
        op.execute(f"DROP TRIGGER {name} ON tracks" if postgresql else f"DROP TRIGGER {name}")
        if postgresql:
            op.execute(f"DROP FUNCTION {name}()")
    op.drop_table("track_changes")
