"""Emotion paths over time, pure: arcs ("calm:energetic" over N minutes) and song-to-song paths.

A point is (arousal, valence) in −1..1. An arc is two or more points visited at even shares of its
duration, with straight lines between them; its target at a time is the point on that polyline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from queueemo.errors import QueueemoError

# Named points of Russell's circumplex (arousal, valence), at 0.6 of the way to the edge.
NAMED_POINTS: dict[str, tuple[float, float]] = {
    "calm": (-0.6, 0.4),
    "relaxed": (-0.5, 0.5),
    "content": (-0.3, 0.6),
    "happy": (0.4, 0.6),
    "excited": (0.6, 0.5),
    "energetic": (0.7, 0.2),
    "tense": (0.6, -0.4),
    "angry": (0.7, -0.6),
    "sad": (-0.5, -0.5),
    "gloomy": (-0.6, -0.3),
    "neutral": (0.0, 0.0),
}
ARC_FORMS = ("accepted forms: NAME:NAME[:NAME…] with names " + ", ".join(NAMED_POINTS)
             + ", or explicit arousal,valence pairs in −1..1, e.g. calm:energetic or -0.5,0.2:0.6,0.4")


@dataclass(frozen=True)
class Arc:
    """Points visited at even shares of ``seconds``."""

    points: np.ndarray  # (k ≥ 2, 2)
    seconds: float

    def target(self, elapsed_s: float) -> np.ndarray | None:
        """The point at ``elapsed_s`` from the arc's start; ``None`` once the arc is over."""
        if elapsed_s >= self.seconds or elapsed_s < 0:
            return None
        return point_along(self.points, elapsed_s / self.seconds)


def point_along(points: np.ndarray, share: float) -> np.ndarray:
    """The point ``share`` (0..1) of the way along a polyline whose vertices are evenly spaced in time."""
    segments = len(points) - 1
    position = min(max(share, 0.0), 1.0) * segments
    i = min(int(position), segments - 1)
    frac = position - i
    return ((1 - frac) * points[i] + frac * points[i + 1]).astype(np.float32)


def parse_point(text: str) -> tuple[float, float]:
    """A named point or an "arousal,valence" pair."""
    name = text.strip().casefold()
    if name in NAMED_POINTS:
        return NAMED_POINTS[name]
    parts = name.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        arousal, valence = (float(p) for p in parts)
    except ValueError:
        raise QueueemoError(f"bad arc point {text!r}; {ARC_FORMS}") from None
    if not (-1 <= arousal <= 1 and -1 <= valence <= 1):
        raise QueueemoError(f"arc point {text!r} is outside −1..1; {ARC_FORMS}")
    return arousal, valence


def parse_arc(text: str, minutes: float) -> Arc:
    """``calm:energetic`` (or ``a,v:a,v…``) over ``minutes`` → an ``Arc``; one-line error otherwise."""
    parts = [p for p in text.split(":")]
    if len(parts) < 2 or not all(p.strip() for p in parts):
        raise QueueemoError(f"bad arc {text!r}; {ARC_FORMS}")
    if not minutes > 0:
        raise QueueemoError(f"an arc needs a positive duration in minutes, not {minutes}")
    return Arc(np.array([parse_point(p) for p in parts], dtype=np.float32), minutes * 60.0)


def path_targets(start: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` targets in even steps from ``start`` (excluded) to ``end`` (the last one)."""
    shares = np.arange(1, steps + 1, dtype=np.float32)[:, None] / steps
    return (np.asarray(start, np.float32) * (1 - shares) + np.asarray(end, np.float32) * shares)
