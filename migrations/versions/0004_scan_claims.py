"""Distributed scan: a lease on each claimed track, the workers with their throughput; a status index.

Revision ID: 0004_scan_claims
Revises: 0003_boundaries_and_decoder
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_scan_claims"
down_revision: str | None = "0003_boundaries_and_decoder"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("tracks") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
        batch.create_index("ix_tracks_claimed_by", ["claimed_by"])
        # `status` in one pass over an index, at a million tracks.
        batch.create_index("ix_tracks_status_summary", ["status", "model_version", "duration_s"])
    op.create_table(
        "scan_workers",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("analysed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scan_workers")
    with op.batch_alter_table("tracks") as batch:
        batch.drop_index("ix_tracks_status_summary")
        batch.drop_index("ix_tracks_claimed_by")
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
