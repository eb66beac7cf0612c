"""Glue shared by ``queueemo next`` and the daemon: index + history + MPD queue → picks → MPD.

The picker stays pure; this module does the reading and writing around it. Candidates are loaded
from the index once into numpy arrays and reused until ``reload()`` (the daemon calls it when the
watcher stored new analyses or MPD's database changed).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from queueemo import picker
from queueemo.player import Player, QueueState

if TYPE_CHECKING:
    from queueemo.config import Settings
    from queueemo.library.db import Library

log = logging.getLogger(__name__)

HISTORY_LIMIT = 1000  # plays looked at by the rules; plenty for any repeat window of hours


def load_candidates(library: Library, music_directory: str | None) -> picker.Candidates:
    """Every analysed track of the index as picker arrays (URIs relative to ``music_directory``)."""
    from queueemo.library.queries import load_candidates as candidate_columns

    with library.session() as session:
        columns = candidate_columns(session, music_directory)
    return picker.Candidates(
        paths=columns.paths,
        uris=columns.uris,
        artists=columns.artists,
        genres=columns.genres,
        opening=columns.opening,
    )


def trajectory_of(library: Library, path: str) -> np.ndarray:
    """The stored trajectory of the track at ``path`` (empty when it is not analysed)."""
    from queueemo.library.queries import trajectory_at

    with library.session() as session:
        return trajectory_at(session, path)


@dataclass
class Queuer:
    """Picks tracks for an MPD queue and appends them."""

    library: Library
    player: Player
    settings: Settings
    forecast: picker.Forecaster | None = None  # default: the shipped model (queueemo.forecast)
    rng: np.random.Generator | None = None

    def __post_init__(self) -> None:
        self.rules = picker.Rules.from_settings(self.settings.picker)
        self.rng = self.rng or np.random.default_rng()
        self._candidates: picker.Candidates | None = None
        self._reasons: np.ndarray | None = None

    def reload(self) -> None:
        """Forget loaded candidates; the next pick reads the index again."""
        self._candidates = self._reasons = None

    def candidates(self) -> tuple[picker.Candidates, np.ndarray]:
        """The candidates and their static exclusion reasons, loaded on first use."""
        if self._candidates is None or self._reasons is None:
            started = time.perf_counter()
            self._candidates = load_candidates(self.library, self.player.music_directory())
            self._reasons = picker.static_reasons(self._candidates, self.rules)
            log.info("loaded %d candidates in %.2f s", len(self._candidates),
                     time.perf_counter() - started)
        return self._candidates, self._reasons

    def _tail_of(self, uri: str) -> np.ndarray:
        candidates, _ = self.candidates()
        row = candidates.index.get(uri)
        if row is None:
            return np.zeros((0, 2), dtype=np.float32)
        return trajectory_of(self.library, candidates.paths[row])[-picker.TAIL_WINDOWS :]

    def _context(self, state: QueueState, now: float) -> picker.Context:
        from queueemo.library.history import recent_plays

        since = now - max(self.rules.repeat_window_s, 1.0)
        plays = recent_plays(self.library, since, limit=HISTORY_LIMIT)
        return picker.Context(
            now=now,
            history=tuple(picker.Play(uri, artist, at) for uri, artist, at in plays),
            queue=tuple(picker.Play(e.uri, e.artist, now) for e in state.entries),
        )

    def _seed(self, candidates: picker.Candidates) -> picker.Pick | None:
        """The configured seed track, when set and analysed."""
        seed = self.settings.picker.seed_track
        if not seed:
            return None
        path = os.path.abspath(os.path.expanduser(seed))
        row = candidates.index.get(seed)
        if row is None and path in candidates.paths:
            row = candidates.paths.index(path)
        uri = candidates.uris[row] if row is not None else None
        if row is None or uri is None or not self.player.knows(uri):
            log.warning("seed track %s is not an analysed track MPD can play; picking at random",
                        seed)
            return None
        empty = np.zeros((0, 2), dtype=np.float32)
        return picker.Pick(path=candidates.paths[row], uri=uri, artist=candidates.artists[row],
                           distance=0.0, reference=None, tail=empty, forecast=empty)

    def plan(self, count: int, *, state: QueueState | None = None, explain: int = 0,
             now: float | None = None) -> list[picker.Pick]:
        """Choose ``count`` tracks to follow the queue (nothing is changed)."""
        state = state or self.player.queue()
        now = time.time() if now is None else now
        candidates, reasons = self.candidates()
        context = self._context(state, now)
        reference = state.reference
        picks: list[picker.Pick] = []
        if reference is None:
            seed = self._seed(candidates)
            if seed is not None:
                picks.append(seed)
                reference_uri: str | None = seed.uri
                count -= 1
            else:
                reference_uri = None
        else:
            reference_uri = reference.uri
        tail = self._tail_of(reference_uri) if reference_uri else np.zeros((0, 2), np.float32)
        if reference_uri and not len(tail):
            log.warning("%s is not in the index; following it with a random track", reference_uri)
        picked = [picker.Play(p.uri, p.artist, now) for p in picks]
        context = picker.Context(now=now, history=context.history, queue=(*context.queue, *picked))
        picks += picker.pick_many(
            count, candidates=candidates, base_reasons=reasons, context=context, rules=self.rules,
            reference=reference_uri, tail=tail, tail_of=self._tail_of,
            forecast=self.forecast or _default_forecast, rng=self.rng,
            available=self.player.knows, explain=explain,
        )
        return picks

    def append(self, picks: list[picker.Pick]) -> None:
        """Add ``picks`` to the end of MPD's queue."""
        for pick in picks:
            self.player.add(pick.uri)
            log.info("queued %s (distance %.3f)", pick.uri, pick.distance)


def _default_forecast(history: np.ndarray, steps: int) -> np.ndarray:
    import queueemo

    return queueemo.forecast(history, steps)


def queue_next(settings: Settings, count: int, *, dry_run: bool = False, explain: int = 0,
               forecast: picker.Forecaster | None = None) -> list[picker.Pick]:
    """``queueemo next``: pick ``count`` tracks and append them unless ``dry_run``."""
    from queueemo.errors import QueueemoError
    from queueemo.library.db import open_library
    from queueemo.library.roots import Roots

    roots = Roots.parse(settings.library.root_names)
    with (open_library(settings.database_url, password_file=settings.library.password_file,
                       roots=roots) as library,
          Player(settings.mpd) as player):
        queuer = Queuer(library, player, settings, forecast=forecast)
        picks = queuer.plan(count, explain=explain)
        if not picks:
            raise QueueemoError(
                "nothing to pick: no analysed track that MPD knows passes the rules "
                "(run `queueemo scan`, `mpc update`, or relax [picker] settings)"
            )
        if not dry_run:
            queuer.append(picks)
    return picks


def pick_record(pick: picker.Pick) -> dict[str, object]:
    """A pick as JSON-ready data (``next --json``)."""
    def points(array: np.ndarray) -> list[list[float]]:
        return [[round(float(a), 4), round(float(v), 4)] for a, v in array]

    return {
        "uri": pick.uri,
        "path": pick.path,
        "artist": pick.artist,
        "distance": round(pick.distance, 4),
        "reference": pick.reference,
        "tail": points(pick.tail),
        "forecast": points(pick.forecast),
        "top": [{"uri": r.uri, "artist": r.artist, "distance": round(r.distance, 4)} for r in pick.top],
        "excluded": [{"uri": r.uri, "distance": round(r.distance, 4), "reason": r.reason.label}
                     for r in pick.excluded],
        "excluded_counts": pick.excluded_counts,
    }


def explain_pick(pick: picker.Pick) -> str:
    """A pick and why, as text for ``next --explain``."""
    def point(a: float, v: float) -> str:
        return f"(arousal {a:+.2f}, valence {v:+.2f})"

    if pick.reference is None:
        return f"{pick.uri}\n  seed: nothing to follow, so a random allowed track"
    lines = [pick.uri, f"  follows   {pick.reference}"]
    if len(pick.tail):
        tail = " ".join(f"{a:+.2f}/{v:+.2f}" for a, v in pick.tail)
        lines.append(f"  its tail  (arousal/valence, last {len(pick.tail)} windows at 2 Hz) {tail}")
        lines.append(f"  forecast  {point(*pick.forecast.mean(axis=0))}")
    else:
        lines.append("  (not in the index: picked at random)")
    for rank, row in enumerate(pick.top, start=1):
        lines.append(f"  #{rank} {row.distance:.3f}  {row.uri}  [{row.artist or '?'}]")
    for row in pick.excluded:
        lines.append(f"  excluded {row.distance:.3f}  {row.uri}: {row.reason.label}")
    if pick.excluded_counts:
        counts = ", ".join(f"{n} {why}" for why, n in sorted(pick.excluded_counts.items()))
        lines.append(f"  excluded in all: {counts}")
    return "\n".join(lines)
