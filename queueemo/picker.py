"""Pure picking: reference trajectory tail + forecast + candidates + history + rules → ranked picks.

Nothing here touches MPD, the database or the clock: the forecaster, the "does MPD know it"
test, the trajectory lookup and the random generator are passed in, so each rule is testable alone.
Candidates live in numpy arrays loaded once; one pick is a vectorised distance over all of them.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from queueemo.config import PickerSettings

TAIL_WINDOWS = 10  # the forecaster's context: 5 s at 2 Hz
Forecaster = Callable[[np.ndarray, int], np.ndarray]


class Reason(IntEnum):
    """Why a candidate may not be picked now (0: it may)."""

    OK = 0
    NOT_IN_MPD_DIR = 1
    EXCLUDED_PATH = 2
    EXCLUDED_GENRE = 3
    RECENTLY_PLAYED = 4
    ARTIST_SPACING = 5
    UNKNOWN_TO_MPD = 6

    @property
    def label(self) -> str:
        """Human-readable reason, used by ``--explain``."""
        return self.name.lower().replace("_", " ")


@dataclass(frozen=True)
class Candidates:
    """Analysed tracks as parallel arrays; ``uris`` is ``None`` where MPD cannot reach the file."""

    paths: tuple[str, ...]
    uris: tuple[str | None, ...]
    artists: tuple[str, ...]
    genres: tuple[str, ...]
    opening: np.ndarray  # (n, 2) float32: mean (arousal, valence) of each track's first seconds
    index: dict[str, int] = field(init=False, repr=False)  # URI → row
    artist_codes: np.ndarray = field(init=False, repr=False)  # row → number of its casefolded artist
    artist_numbers: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        numbers: dict[str, int] = {}
        codes = [numbers.setdefault(a.casefold(), len(numbers)) for a in self.artists]
        object.__setattr__(self, "index", {u: i for i, u in enumerate(self.uris) if u is not None})
        object.__setattr__(self, "artist_codes", np.array(codes, dtype=np.int32))
        object.__setattr__(self, "artist_numbers", numbers)

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class Rules:
    """The picking rules, in the units the picker uses."""

    repeat_window_s: float = 4 * 3600.0
    artist_spacing: int = 3
    exclude_globs: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    tie_tolerance: float = 0.05
    forecast_steps: int = 1

    @classmethod
    def from_settings(cls, settings: PickerSettings) -> Rules:
        """Rules from the ``[picker]`` config section."""
        return cls(
            repeat_window_s=settings.repeat_window_hours * 3600.0,
            artist_spacing=settings.artist_spacing,
            exclude_globs=settings.exclude_globs,
            exclude_genres=settings.exclude_genres,
            tie_tolerance=settings.tie_tolerance,
            forecast_steps=settings.forecast_steps,
        )


@dataclass(frozen=True)
class Play:
    """A song MPD played (or has queued): its URI, artist and start time (Unix seconds)."""

    uri: str
    artist: str = ""
    at: float = 0.0


@dataclass(frozen=True)
class Context:
    """What the rules look at: history (oldest first) and the queue up to its end."""

    now: float
    history: tuple[Play, ...] = ()
    queue: tuple[Play, ...] = ()  # every queued song; their order is the play order


@dataclass(frozen=True)
class Ranked:
    """One candidate in an explanation."""

    path: str
    uri: str | None
    artist: str
    distance: float
    reason: Reason = Reason.OK


@dataclass(frozen=True)
class Pick:
    """A chosen track and the reasoning behind it."""

    path: str
    uri: str
    artist: str
    distance: float
    reference: str | None  # URI of the track it follows; None for a seed
    tail: np.ndarray  # the reference's last windows (empty for a seed)
    forecast: np.ndarray  # (steps, 2), empty for a seed
    top: tuple[Ranked, ...] = ()  # nearest eligible candidates
    excluded: tuple[Ranked, ...] = ()  # nearest ineligible candidates, with their reason
    excluded_counts: dict[str, int] = field(default_factory=dict)


def static_reasons(candidates: Candidates, rules: Rules) -> np.ndarray:
    """Per-candidate reasons that do not change between picks (MPD reach, globs, genres)."""
    reasons = np.zeros(len(candidates), dtype=np.int8)
    reasons[[u is None for u in candidates.uris]] = Reason.NOT_IN_MPD_DIR
    if rules.exclude_globs:
        pattern = re.compile("|".join(fnmatch.translate(g) for g in rules.exclude_globs))
        hits = [bool(pattern.match(p)) or bool(u and pattern.match(u))
                for p, u in zip(candidates.paths, candidates.uris, strict=True)]
        reasons[(reasons == 0) & np.array(hits, dtype=bool)] = Reason.EXCLUDED_PATH
    if rules.exclude_genres:
        banned = {g.casefold() for g in rules.exclude_genres}
        hits = [bool(banned & _split_tag(g)) for g in candidates.genres]
        reasons[(reasons == 0) & np.array(hits, dtype=bool)] = Reason.EXCLUDED_GENRE
    return reasons


def _split_tag(value: str) -> set[str]:
    return {part.strip().casefold() for part in re.split(r"[;/,]", value) if part.strip()}


def _dynamic_reasons(
    base: np.ndarray, candidates: Candidates, context: Context, picked: Sequence[Play], rules: Rules
) -> np.ndarray:
    """Add repeat-window and artist-spacing reasons for the current history, queue and picks."""
    reasons = base.copy()
    recent = {p.uri for p in context.history if context.now - p.at <= rules.repeat_window_s}
    recent.update(p.uri for p in context.queue)
    recent.update(p.uri for p in picked)
    rows = [candidates.index[u] for u in recent if u in candidates.index]
    if rows:
        rows_arr = np.array(rows)
        free = reasons[rows_arr] == 0
        reasons[rows_arr[free]] = Reason.RECENTLY_PLAYED
    if rules.artist_spacing:
        recent_artists = {p.artist.casefold() for p in _sequence(context, picked)[-rules.artist_spacing:]}
        blocked = [candidates.artist_numbers[a] for a in recent_artists
                   if a and a in candidates.artist_numbers]
        if blocked:
            hits = np.isin(candidates.artist_codes, blocked)
            reasons[(reasons == 0) & hits] = Reason.ARTIST_SPACING
    return reasons


def _sequence(context: Context, picked: Sequence[Play]) -> list[Play]:
    """The play order: history, then what is queued after the last played song, then picks."""
    queue = [p.uri for p in context.queue]
    start = 0
    if context.history and context.history[-1].uri in queue:
        start = len(queue) - queue[::-1].index(context.history[-1].uri)
    return [*context.history, *context.queue[start:], *picked]


def _ranked(candidates: Candidates, rows: np.ndarray, dist: np.ndarray, reasons: np.ndarray,
            ) -> tuple[Ranked, ...]:
    return tuple(
        Ranked(candidates.paths[i], candidates.uris[i], candidates.artists[i], float(dist[i]),
               Reason(int(reasons[i])))
        for i in rows
    )


def _nearest(mask: np.ndarray, dist: np.ndarray, k: int) -> np.ndarray:
    rows = np.flatnonzero(mask)
    if len(rows) > k:
        rows = rows[np.argpartition(dist[rows], k)[:k]]
    return rows[np.argsort(dist[rows], kind="stable")]


def pick_next(
    *,
    candidates: Candidates,
    base_reasons: np.ndarray,
    context: Context,
    rules: Rules,
    reference: str | None,
    tail: np.ndarray,
    forecast: Forecaster,
    rng: np.random.Generator,
    available: Callable[[str], bool] = lambda uri: True,
    picked: Sequence[Play] = (),
    explain: int = 0,
) -> Pick | None:
    """The allowed candidate nearest to the forecast after ``tail``; ``None`` if none is allowed.

    With an empty ``tail`` (nothing to follow) a random allowed candidate is the seed. Near-ties
    (within ``rules.tie_tolerance`` of the best distance) are broken at random by ``rng`` so the
    queue does not settle into loops. ``explain`` > 0 fills ``top``/``excluded`` with as many rows.
    """
    reasons = _dynamic_reasons(base_reasons, candidates, context, picked, rules)
    if len(tail):
        predicted = np.asarray(forecast(np.asarray(tail, dtype=np.float32), rules.forecast_steps))
        target = predicted.reshape(-1, 2).mean(axis=0)
        diff = candidates.opening - target.astype(np.float32)
        dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    else:
        predicted = np.empty((0, 2), dtype=np.float32)
        dist = rng.random(len(candidates))  # a seed: every allowed track equally likely
    while True:
        allowed = reasons == 0
        if not allowed.any():
            return None
        best = float(dist[allowed].min())
        ties = np.flatnonzero(allowed & (dist <= best + (rules.tie_tolerance if len(tail) else 0)))
        row = int(rng.choice(ties)) if len(ties) > 1 else int(ties[0])
        uri = candidates.uris[row]
        assert uri is not None  # rows without a URI carry NOT_IN_MPD_DIR
        if available(uri):
            break
        reasons[row] = Reason.UNKNOWN_TO_MPD
    counts: dict[str, int] = {}
    top: tuple[Ranked, ...] = ()
    excluded: tuple[Ranked, ...] = ()
    if explain:
        values, numbers = np.unique(reasons[reasons != 0], return_counts=True)
        counts = {Reason(int(v)).label: int(n) for v, n in zip(values, numbers, strict=True)}
        top = _ranked(candidates, _nearest(reasons == 0, dist, explain), dist, reasons)
        excluded = _ranked(candidates, _nearest(reasons != 0, dist, explain), dist, reasons)
    return Pick(
        path=candidates.paths[row],
        uri=uri,
        artist=candidates.artists[row],
        distance=float(dist[row]) if len(tail) else 0.0,
        reference=reference,
        tail=np.asarray(tail, dtype=np.float32),
        forecast=predicted,
        top=top,
        excluded=excluded,
        excluded_counts=counts,
    )


def pick_many(
    count: int,
    *,
    candidates: Candidates,
    base_reasons: np.ndarray,
    context: Context,
    rules: Rules,
    reference: str | None,
    tail: np.ndarray,
    tail_of: Callable[[str], np.ndarray],
    forecast: Forecaster,
    rng: np.random.Generator,
    available: Callable[[str], bool] = lambda uri: True,
    explain: int = 0,
) -> list[Pick]:
    """Pick ``count`` tracks in a row, each following the previous pick's trajectory tail."""
    picks: list[Pick] = []
    picked: list[Play] = []
    for _ in range(count):
        pick = pick_next(
            candidates=candidates, base_reasons=base_reasons, context=context, rules=rules,
            reference=reference, tail=tail, forecast=forecast, rng=rng, available=available,
            picked=picked, explain=explain,
        )
        if pick is None:
            break
        picks.append(pick)
        picked.append(Play(pick.uri, pick.artist, context.now))
        reference, tail = pick.uri, tail_of(pick.uri)[-TAIL_WINDOWS:]
    return picks
