"""Audible boundaries and boundary acoustics per track; the decoder behind each analysis attempt.

Revision ID: 0003_boundaries_and_decoder
Revises: 0002_play_history
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_boundaries_and_decoder"
down_revision: str | None = "0002_play_history"
branch_labels: str | None = None
depends_on: str | None = None

_FLOAT_COLUMNS = (
    "sound_start_s", "ending_start_s", "opening_lufs", "ending_lufs", "opening_brightness",
    "ending_brightness",
)


def upgrade() -> None:
    with op.batch_alter_table("tracks") as batch:
        batch.add_column(sa.Column("decoder", sa.String(64), nullable=True))
        for name in _FLOAT_COLUMNS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tracks") as batch:
        for name in reversed(_FLOAT_COLUMNS):
            batch.drop_column(name)
        batch.drop_column("decoder")
