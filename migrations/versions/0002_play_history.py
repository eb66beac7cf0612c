"""Play history: the songs MPD started, for the picker's repeat window.

Revision ID: 0002_play_history
Revises: 0001_initial
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_play_history"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "plays",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("artist", sa.Text(), nullable=False),
        sa.Column("played_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_plays_uri", "plays", ["uri"])
    op.create_index("ix_plays_played_at", "plays", ["played_at"])


def downgrade() -> None:
    op.drop_table("plays")
