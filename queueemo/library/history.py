"""Play history: which song MPD started when, so the picker can honour its repeat window.

The daemon records a song when MPD starts playing it; ``next`` only reads. Rows are keyed by MPD URI
(what MPD reports), not by index path, so history survives a rescan or a moved music folder.
"""

from __future__ import annotations

import logging
import os

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

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


def plays_follow_move(session: Session, old: tuple[str, str], new: tuple[str, str]) -> int:
    """Point the plays of a file moved from ``old`` to ``new`` (``(root, rel_path)``) at its new URI.

    A URI is the root's place in MPD's music folder followed by the rel_path, so within one root a URI
    ending in the old rel_path ends in the new one after the move (without this, a moved song lost its
    history and could repeat inside the repeat window). A move to another root is left alone: where
    that root lies in MPD's folder is not known here. Returns the number of plays changed.
    """
    (old_root, old_rel), (new_root, new_rel) = old, new
    if old_root != new_root or old_rel == new_rel:
        return 0
    old_rel, new_rel = old_rel.replace(os.sep, "/"), new_rel.replace(os.sep, "/")
    matching = sa.or_(PlayRecord.uri == old_rel, PlayRecord.uri.endswith("/" + old_rel, autoescape=True))
    records = session.scalars(sa.select(PlayRecord).where(matching)).all()
    for record in records:
        record.uri = record.uri[: len(record.uri) - len(old_rel)] + new_rel
    return len(records)


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
