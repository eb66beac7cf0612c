"""Tags and duration read with mutagen; a file mutagen cannot read simply has no tags."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Easy (format-neutral) tag names and their ID3 frames, for WAV/AIFF whose tags mutagen gives as ID3.
_ID3_FRAMES = {
    "artist": "TPE1", "albumartist": "TPE2", "album": "TALB", "title": "TIT2", "genre": "TCON",
    "tracknumber": "TRCK",
}
_TRACK_NUMBER = re.compile(r"\s*(\d+)")


@dataclass(frozen=True, slots=True)
class Tags:
    """The tags the index keeps; ``None`` where the file has none."""

    artist: str | None = None
    albumartist: str | None = None
    album: str | None = None
    title: str | None = None
    genre: str | None = None
    tracknumber: int | None = None
    duration_s: float | None = None


def _first(tags: object, key: str) -> str | None:
    values = None
    try:
        values = tags[key]  # type: ignore[index]
    except (KeyError, ValueError, TypeError):
        frame = _ID3_FRAMES.get(key)
        if frame and hasattr(tags, "getall"):
            found = tags.getall(frame)
            values = found[0].text if found else None
    if not values:
        return None
    text = str(values[0]).strip()
    return text or None


def read_tags(path: str) -> Tags:
    """Tags of ``path`` (never raises: unreadable or untagged files give empty ``Tags``)."""
    import mutagen

    try:
        audio = mutagen.File(path, easy=True)
    except Exception as exc:  # mutagen raises many types on damaged files
        log.debug("no tags for %r: %s", path, exc)
        return Tags()
    if audio is None:
        return Tags()
    length = getattr(audio.info, "length", None)
    duration = float(length) if length and length > 0 else None
    tags = audio.tags
    if tags is None:
        return Tags(duration_s=duration)
    number = _first(tags, "tracknumber")
    match = _TRACK_NUMBER.match(number or "")
    return Tags(
        artist=_first(tags, "artist"),
        albumartist=_first(tags, "albumartist"),
        album=_first(tags, "album"),
        title=_first(tags, "title"),
        genre=_first(tags, "genre"),
        tracknumber=int(match.group(1)) if match else None,
        duration_s=duration,
    )
