"""Play history: which song MPD started when, so the picker can honour its repeat window.

The daemon records a song when MPD starts playing it; ``next`` only reads. Rows are keyed by MPD URI
(what MPD reports), not by index path, so history survives a rescan or a moved music folder.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from queueemo.library.db import Base, Library

log = logging.getLogger(__name__)


class PlayRecord(Base):
    """One song MPD started playing."""

    __tablename__ = "plays"

    id: Mapped[int] = mapped_column(primary_key=True)
    uri: Mapped[str] = mapped_column(sa.Text, index=True)
    artist: Mapped[str] = mapped_column(sa.Text, default="")
    played_at: Mapped[float] = mapped_column(sa.Float, index=True)  # Unix seconds


def record_play(library: Library, uri: str, artist: str, at: float) -> None:
    """Remember that ``uri`` started playing at ``at``."""
    with library.session() as session:
        session.add(PlayRecord(uri=uri, artist=artist, played_at=at))
    log.debug("recorded play of %s", uri)


def recent_plays(library: Library, since: float, *, limit: int = 1000) -> list[tuple[str, str, float]]:
    """``(uri, artist, played_at)`` of plays since ``since``, oldest first (the last ``limit``)."""
    query = (
        sa.select(PlayRecord.uri, PlayRecord.artist, PlayRecord.played_at)
        .where(PlayRecord.played_at >= since)
        .order_by(PlayRecord.played_at.desc(), PlayRecord.id.desc())
        .limit(limit)
    )
    with library.session() as session:
        rows = session.execute(query).all()
    return [(uri, artist, at) for uri, artist, at in reversed(rows)]


def prune_history(library: Library, before: float) -> int:
    """Forget plays older than ``before``; returns how many were removed."""
    with library.session() as session:
        result = session.execute(sa.delete(PlayRecord).where(PlayRecord.played_at < before))
    removed = result.rowcount or 0  # type: ignore[attr-defined]
    if removed:
        log.info("pruned %d old plays from the history", removed)
    return removed
