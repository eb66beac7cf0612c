"""Initial schema: the tracks table.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("path", sa.LargeBinary(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("rel_path", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("content_hash", sa.String(32), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("artist", sa.Text(), nullable=True),
        sa.Column("albumartist", sa.Text(), nullable=True),
        sa.Column("album", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("genre", sa.Text(), nullable=True),
        sa.Column("tracknumber", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("analysed_at", sa.DateTime(), nullable=True),
        sa.Column("trajectory", sa.LargeBinary(), nullable=True),
        sa.Column("opening_arousal", sa.Float(), nullable=True),
        sa.Column("opening_valence", sa.Float(), nullable=True),
        sa.Column("closing_arousal", sa.Float(), nullable=True),
        sa.Column("closing_valence", sa.Float(), nullable=True),
        sa.Column("mean_arousal", sa.Float(), nullable=True),
        sa.Column("mean_valence", sa.Float(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'ok', 'failed')", name="ck_tracks_status"),
        sa.UniqueConstraint("path", name="uq_tracks_path"),
    )
    op.create_index("ix_tracks_content_hash", "tracks", ["content_hash"])
    op.create_index("ix_tracks_status", "tracks", ["status"])
    op.create_index("ix_tracks_opening", "tracks", ["opening_arousal", "opening_valence"])
    op.create_index("ix_tracks_closing", "tracks", ["closing_arousal", "closing_valence"])


def downgrade() -> None:
    op.drop_table("tracks")
