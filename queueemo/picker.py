"""Pure picking: reference + target (forecast, arc or path) + candidates + history + rules → ranked picks.

Nothing here touches MPD, the database or the clock: the forecaster, the "does MPD know it"
test, the trajectory lookup and the random generator are passed in, so each rule is testable alone.
Candidates live in numpy arrays loaded once; one pick is a vectorised distance over all of them.

The distance of a candidate is its emotion distance (its opening to the target) plus the boundary
continuity terms: ``loudness_weight`` × the loudness jump, ``brightness_weight`` × the brightness
jump and ``onset_weight`` × the onset-density jump (log2) between the reference's ending and the
candidate's opening, each jump divided by its spread over the library (so a weight of 0.1 costs 0.1
per typical spread). The rules that fit the library (spacing, duplicates) relax step by step when
they would leave too few candidates; see ``_apply_rules``.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from queueemo.boundaries import TAIL_WINDOWS  # the forecaster's context, defined once
from queueemo.candidates import CandidateTable, TableBuilder, UriIndex
from queueemo.config import PickerSettings

Forecaster = Callable[[np.ndarray, int], np.ndarray]
TargetAt = Callable[[int, float], "np.ndarray | None"]  # (pick number, seconds from now) → A/V target


class Reason(IntEnum):
    """Why a candidate may not be picked now (0: it may)."""

    OK = 0
    NOT_IN_MPD_DIR = 1
    EXCLUDED_PATH = 2
    EXCLUDED_GENRE = 3
    RECENTLY_PLAYED = 4
    ARTIST_SPACING = 5
    UNKNOWN_TO_MPD = 6
    QUEUED = 7
    ALBUM_SPACING = 8
    DUPLICATE_RECORDING = 9
    FOLLOWED = 10  # the song the picks follow (``next --from``): as if it had just played

    @property
    def label(self) -> str:
        """Human-readable reason, used by ``--explain``."""
        return self.name.lower().replace("_", " ")


def _spread(*columns: np.ndarray) -> float:
    values = np.concatenate(columns).astype(np.float64)
    values = values[np.isfinite(values)]
    spread = float(values.std()) if len(values) > 1 else 0.0
    return spread if spread > 1e-6 else 1.0


class Candidates:
    """Analysed tracks as parallel columns; ``uris[row]`` is ``None`` where MPD cannot reach the file.

    A view over a compact ``CandidateTable`` (``Candidates.of(table)``, as the daemon loads them), or
    built from plain sequences as the arguments below (then ``albums`` and the acoustics are optional:
    empty / ``None`` is unknown, and the rule or term that needs them does nothing). Boundary
    acoustics are NaN where a track has none.
    """

    table: CandidateTable
    index: UriIndex  # URI → row
    artist_codes: np.ndarray  # row → code of its casefolded artist (-1: none)
    artist_numbers: dict[str, int]  # casefolded artist → code
    album_codes: np.ndarray  # -1: no album
    recording_codes: np.ndarray  # normalised artist + title; -1: none
    acoustics: np.ndarray  # (6, n) float32: open/end LUFS, open/end log2 Hz, open/end log2 onsets/s
    scales: tuple[float, float, float]  # spread of loudness (LU), brightness, onset density

    def __init__(self, paths: Sequence[str], uris: Sequence[str | None], artists: Sequence[str],
                 genres: Sequence[str], opening: np.ndarray, albums: Sequence[str] = (),
                 titles: Sequence[str] = (), durations: np.ndarray | None = None,
                 opening_lufs: np.ndarray | None = None, ending_lufs: np.ndarray | None = None,
                 opening_brightness: np.ndarray | None = None, ending_brightness: np.ndarray | None = None,
                 ending_start_s: np.ndarray | None = None, opening_onsets: np.ndarray | None = None,
                 ending_onsets: np.ndarray | None = None) -> None:
        n = len(paths)
        builder = TableBuilder()
        builder.add(ids=range(n), paths=[os.fsencode(p) for p in paths],
                    uris=[None if u is None else os.fsencode(u) for u in uris], artists=list(artists),
                    genres=list(genres), albums=list(albums) or [""] * n, titles=list(titles) or [""] * n,
                    opening=opening, acoustics=(durations, ending_start_s, opening_lufs, ending_lufs,
                                                opening_brightness, ending_brightness, opening_onsets,
                                                ending_onsets))
        self._attach(builder.build())

    @classmethod
    def of(cls, table: CandidateTable) -> Candidates:
        """The candidates of a loaded table (its columns are shared, not copied)."""
        candidates = cls.__new__(cls)
        candidates._attach(table)
        return candidates

    def _attach(self, table: CandidateTable) -> None:
        self.table = table
        self.index = UriIndex(table.uris, table.uri_hash)
        self.artist_codes = table.artist_keys
        self.artist_numbers = table.vocabulary.keys
        self.album_codes = table.album
        self.recording_codes = table.recording
        self.acoustics = table.acoustics[2:]  # a view: LUFS, log2 Hz, log2 onsets/s; opening and ending
        self.scales = (_spread(self.acoustics[0], self.acoustics[1]),
                       _spread(self.acoustics[2], self.acoustics[3]),
                       _spread(self.acoustics[4], self.acoustics[5]))

    def __len__(self) -> int:
        return len(self.table)

    paths = property(lambda self: self.table.paths, doc="Each track's path (``Strings``).")
    uris = property(lambda self: self.table.uris, doc="Each track's MPD URI, ``None``: out of reach.")
    artists = property(lambda self: self.table.artists, doc="Each track's artist as tagged.")
    genres = property(lambda self: self.table.genres, doc="Each track's genre tag.")
    opening = property(lambda self: self.table.opening,
                       doc="(n, 2) float32: mean (arousal, valence) of each track's audible opening.")
    durations = property(lambda self: self.table.acoustics[0], doc="Seconds (NaN: unknown).")
    ending_start_s = property(lambda self: self.table.acoustics[1],
                              doc="Where each track's ending (fade, decay) begins, in seconds.")

    def ending_start(self, row: int) -> float | None:
        """Seconds from the start where the track in ``row`` begins to end (``None``: unknown)."""
        value = float(self.table.acoustics[1, row])
        return value if np.isfinite(value) else None

    def duration(self, row: int) -> float:
        """Seconds of the track in ``row`` (0 when unknown)."""
        value = float(self.table.acoustics[0, row])
        return value if np.isfinite(value) else 0.0


@dataclass(frozen=True)
class Rules:
    """The picking rules, in the units the picker uses."""

    repeat_window_s: float = 4 * 3600.0
    artist_spacing: int = 3
    album_spacing: int = 3
    avoid_duplicates: bool = True
    min_choice_share: float = 0.3
    exclude_globs: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    tie_tolerance: float = 0.05
    forecast_steps: int = 1
    loudness_weight: float = 0.0
    brightness_weight: float = 0.0
    onset_weight: float = 0.0

    @classmethod
    def from_settings(cls, settings: PickerSettings) -> Rules:
        """Rules from the ``[picker]`` config section."""
        return cls(
            repeat_window_s=settings.repeat_window_hours * 3600.0,
            artist_spacing=settings.artist_spacing,
            album_spacing=settings.album_spacing,
            avoid_duplicates=settings.avoid_duplicates,
            min_choice_share=settings.min_choice_share,
            exclude_globs=settings.exclude_globs,
            exclude_genres=settings.exclude_genres,
            tie_tolerance=settings.tie_tolerance,
            forecast_steps=settings.forecast_steps,
            loudness_weight=settings.loudness_weight,
            brightness_weight=settings.brightness_weight,
            onset_weight=settings.onset_weight,
        )


@dataclass(frozen=True)
class Play:
    """A song MPD played (or has queued): its URI, artist and start time (Unix seconds)."""

    uri: str
    artist: str = ""
    at: float = 0.0


@dataclass(frozen=True)
class Context:
    """What the rules look at: history (oldest first), the queue up to its end, and the song the
    picks follow when it is not the queue's last (``next --from``)."""

    now: float
    history: tuple[Play, ...] = ()
    queue: tuple[Play, ...] = ()  # every queued song; their order is the play order
    followed: Play | None = None


@dataclass(frozen=True)
class Ranked:
    """One candidate in an explanation; ``terms`` are (emotion, loudness, brightness, onsets) of its
    distance."""

    path: str
    uri: str | None
    artist: str
    distance: float
    reason: Reason = Reason.OK
    terms: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Pick:
    """A chosen track and the reasoning behind it.

    ``basis`` says what the distance measured: "forecast" (flow), "target" (an arc or path point),
    "seed" (nothing to follow: random), "unanalysed" (the reference has no trajectory: random) or
    "given" (named by the user, not picked: a path's FROM or TO, ``[picker] seed_track``).
    """

    path: str
    uri: str
    artist: str
    distance: float
    reference: str | None  # URI of the track it follows; None for a seed
    tail: np.ndarray  # the reference's last windows (empty for a seed)
    forecast: np.ndarray  # (steps, 2) forecast, or (1, 2) target; empty when random
    top: tuple[Ranked, ...] = ()  # nearest eligible candidates
    excluded: tuple[Ranked, ...] = ()  # nearest ineligible candidates, with their reason
    excluded_counts: dict[str, int] = field(default_factory=dict)
    basis: str = "forecast"
    terms: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    # loudness (LU), brightness (octaves) and onset-density (octaves: log2 of the ratio) jump
    jumps: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    tied: int = 1  # how many near-ties the pick was drawn from at random
    relaxed: tuple[str, ...] = ()  # rules relaxed for this pick, e.g. "artist spacing 3 → 1"
    fallback: bool = False  # the repeat window had consumed the pool: least recently played allowed
    unanalysed: str = ""  # why the reference has no trajectory (basis "unanalysed"), if known
    given: str = ""  # who named the track (basis "given"), e.g. "the path's start (FROM)"


def static_reasons(candidates: Candidates, rules: Rules) -> np.ndarray:
    """Per-candidate reasons that do not change between picks (MPD reach, globs, genres)."""
    reasons = np.zeros(len(candidates), dtype=np.int8)
    reasons[candidates.table.uri_lengths < 0] = Reason.NOT_IN_MPD_DIR
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


@dataclass(frozen=True)
class _Verdict:
    reasons: np.ndarray
    relaxed: tuple[str, ...] = ()
    fallback: bool = False


def _recent_codes(codes: np.ndarray, candidates: Candidates, plays: Sequence[Play], n: int) -> np.ndarray:
    """Codes (≥ 0) of the last ``n`` plays that are candidates."""
    if n <= 0:
        return np.zeros(0, dtype=np.int32)
    rows = [candidates.index[p.uri] for p in plays[-n:] if p.uri in candidates.index]
    found = codes[rows] if rows else np.zeros(0, dtype=np.int32)
    return found[found >= 0]


def _artist_block(candidates: Candidates, sequence: Sequence[Play], n: int) -> np.ndarray:
    if n <= 0:
        return np.zeros(len(candidates), dtype=bool)
    names = {p.artist.casefold() for p in sequence[-n:]}
    blocked = [candidates.artist_numbers[a] for a in names if a and a in candidates.artist_numbers]
    return np.isin(candidates.artist_codes, blocked) if blocked else np.zeros(len(candidates), bool)


def _code_block(codes: np.ndarray, candidates: Candidates, plays: Sequence[Play], n: int) -> np.ndarray:
    blocked = _recent_codes(codes, candidates, plays, n)
    if not len(blocked):
        return np.zeros(len(candidates), dtype=bool)
    return np.isin(codes, blocked) & (codes >= 0)


def _apply_rules(base: np.ndarray, candidates: Candidates, context: Context, picked: Sequence[Play],
                 rules: Rules) -> _Verdict:
    """Repeat window, queue, duplicates, album and artist spacing, relaxed to fit the library.

    1. Queued (and already picked) tracks are out; so are tracks played within the repeat window —
       unless that leaves nothing, then the least recently played share of them comes back
       (``fallback``).
    2. Duplicate recordings, album spacing and artist spacing apply at full strength. While they leave
       fewer than ``min_choice_share`` of that pool, they relax one step at a time, only rules that
       block something: artist and album spacing in turn (artist first), each down to 0, and only
       then duplicate recordings.
    """
    reasons = base.copy()
    queued = {p.uri for p in context.queue} | {p.uri for p in picked}
    last_played: dict[str, float] = {}
    for play in context.history:
        if context.now - play.at <= rules.repeat_window_s and play.uri not in queued:
            last_played[play.uri] = max(play.at, last_played.get(play.uri, -math.inf))
    followed = {context.followed.uri} if context.followed else set()
    for uris, reason in ((followed, Reason.FOLLOWED), (last_played, Reason.RECENTLY_PLAYED),
                         (queued, Reason.QUEUED)):
        rows = np.array([candidates.index[u] for u in uris if u in candidates.index], dtype=np.int64)
        if len(rows):
            free = reasons[rows] == 0
            reasons[rows[free]] = reason
    fallback = False
    if not (reasons == 0).any():
        played = [(at, candidates.index[u]) for u, at in last_played.items() if u in candidates.index]
        played = sorted((at, row) for at, row in played if reasons[row] == Reason.RECENTLY_PLAYED)
        if played:
            fallback = True
            keep = max(1, math.ceil(rules.min_choice_share * len(played)))
            reasons[[row for _, row in played[:keep]]] = 0
    pool = int((reasons == 0).sum())
    enough = max(1, math.ceil(rules.min_choice_share * pool))
    sequence = _sequence(context, picked)
    artist, album, duplicates = rules.artist_spacing, rules.album_spacing, rules.avoid_duplicates
    recent = [p for p in context.history if context.now - p.at <= rules.repeat_window_s]
    recent += [*context.queue, *_followed(context), *picked]
    duplicate_mask = _code_block(candidates.recording_codes, candidates, recent, len(recent))
    own = [candidates.index[p.uri] for p in recent if p.uri in candidates.index]
    duplicate_mask[own] = False  # a track is not a duplicate of itself (the repeat window's job)

    def masks() -> list[tuple[Reason, np.ndarray]]:
        return [
            (Reason.DUPLICATE_RECORDING, duplicate_mask if duplicates else np.zeros(len(reasons), bool)),
            (Reason.ALBUM_SPACING, _code_block(candidates.album_codes, candidates, sequence, album)),
            (Reason.ARTIST_SPACING, _artist_block(candidates, sequence, artist)),
        ]

    current = masks()
    free = reasons == 0
    turn = 0
    while True:
        blocked = np.zeros(len(reasons), dtype=bool)
        for _, mask in current:
            blocked |= mask
        if int((free & ~blocked).sum()) >= enough or not (artist or album or duplicates):
            break
        biting = [(free & mask).any() for _, mask in current]  # duplicates, album, artist
        artist_turn = turn % 2 == 0 or not (album and biting[1])
        turn += 1
        if artist and biting[2] and artist_turn:
            artist -= 1
        elif album and biting[1]:
            album -= 1
        elif duplicates and biting[0]:
            duplicates = False
        else:
            break
        current = masks()
    relaxed = []
    if artist != rules.artist_spacing:
        relaxed.append(f"artist spacing {rules.artist_spacing} → {artist}")
    if album != rules.album_spacing:
        relaxed.append(f"album spacing {rules.album_spacing} → {album}")
    if duplicates != rules.avoid_duplicates:
        relaxed.append("duplicate recordings allowed")
    for reason, mask in current:
        reasons[(reasons == 0) & mask] = reason
    return _Verdict(reasons, tuple(relaxed), fallback)


def reason_counts(reasons: np.ndarray) -> dict[str, int]:
    """How many candidates each reason excludes, by label."""
    values, numbers = np.unique(reasons[reasons != 0], return_counts=True)
    return {Reason(int(v)).label: int(n) for v, n in zip(values, numbers, strict=True)}


def _sequence(context: Context, picked: Sequence[Play]) -> list[Play]:
    """The play order: history, then what is queued after the last played song, then picks."""
    queue = [p.uri for p in context.queue]
    start = 0
    if context.history and context.history[-1].uri in queue:
        start = len(queue) - queue[::-1].index(context.history[-1].uri)
    return [*context.history, *context.queue[start:], *_followed(context), *picked]


def _followed(context: Context) -> list[Play]:
    return [context.followed] if context.followed else []


@dataclass(frozen=True)
class _Terms:
    """The four parts of every candidate's distance, read row by row only for explanations."""

    emotion: np.ndarray
    loudness: np.ndarray
    brightness: np.ndarray
    onsets: np.ndarray

    def __getitem__(self, row: int) -> tuple[float, float, float, float]:
        return (float(self.emotion[row]), float(self.loudness[row]), float(self.brightness[row]),
                float(self.onsets[row]))


def _ranked(candidates: Candidates, rows: np.ndarray, dist: np.ndarray, reasons: np.ndarray,
            terms: _Terms) -> tuple[Ranked, ...]:
    return tuple(
        Ranked(candidates.paths[i], candidates.uris[i], candidates.artists[i], float(dist[i]),
               Reason(int(reasons[i])), terms[i])
        for i in rows
    )


def _nearest(mask: np.ndarray, dist: np.ndarray, k: int) -> np.ndarray:
    rows = np.flatnonzero(mask)
    if len(rows) > k:
        rows = rows[np.argpartition(dist[rows], k)[:k]]
    return rows[np.argsort(dist[rows], kind="stable")]


def continuity_terms(candidates: Candidates, reference: str | None, rules: Rules,
                     ) -> tuple[list[np.ndarray], tuple[float, float, float] | None]:
    """Weighted loudness, brightness and onset terms for every candidate, and the reference's ending.

    A candidate without a boundary acoustic costs one spread per weight (a typical jump: tracks
    analysed before it was stored are neither favoured nor shunned); when the reference has none,
    that term is 0 (nothing to continue from).
    """
    n = len(candidates)
    row = candidates.index.get(reference) if reference else None
    if row is None:
        return [np.zeros(n), np.zeros(n), np.zeros(n)], None
    ending = candidates.acoustics[[1, 3, 5], row]
    weights = (rules.loudness_weight, rules.brightness_weight, rules.onset_weight)
    out = []
    for term, (end, scale, weight) in enumerate(zip(ending, candidates.scales, weights, strict=True)):
        if not np.isfinite(end) or not weight:
            out.append(np.zeros(n))
            continue
        jump = np.abs(candidates.acoustics[2 * term] - end)
        jump *= weight / scale
        out.append(np.nan_to_num(jump, copy=False, nan=weight))
    return out, (float(ending[0]), float(ending[1]), float(ending[2]))


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
    target: np.ndarray | None = None,
) -> Pick | None:
    """The allowed candidate nearest to the target after ``tail``; ``None`` if none is allowed.

    The target is ``target`` when given (arc and path modes), else the forecast after ``tail``.
    With neither (an empty ``tail``: a seed, or a reference never analysed) a random allowed candidate
    is chosen. Near-ties (within ``rules.tie_tolerance`` of the best distance) are broken at random by
    ``rng`` so the queue does not settle into loops. ``explain`` > 0 fills ``top``/``excluded``.
    """
    verdict = _apply_rules(base_reasons, candidates, context, picked, rules)
    reasons = verdict.reasons
    n = len(candidates)
    if target is not None or len(tail):
        if target is not None:
            predicted = np.asarray(target, dtype=np.float32).reshape(1, 2)
            basis = "target"
        else:
            predicted = np.asarray(forecast(np.asarray(tail, dtype=np.float32), rules.forecast_steps))
            basis = "forecast"
        goal = predicted.reshape(-1, 2).mean(axis=0).astype(np.float32)
        diff = candidates.opening - goal
        emotion = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        (loudness, brightness, onsets), ending = continuity_terms(candidates, reference, rules)
        dist = emotion + loudness + brightness + onsets
        tolerance = rules.tie_tolerance
    else:
        predicted = np.empty((0, 2), dtype=np.float32)
        basis = "seed" if reference is None else "unanalysed"
        emotion = loudness = brightness = onsets = np.zeros(n)
        ending = None
        dist = rng.random(n)  # every allowed track equally likely
        tolerance = 0.0
    while True:
        allowed = reasons == 0
        if not allowed.any():
            return None
        best = float(dist[allowed].min())
        ties = np.flatnonzero(allowed & (dist <= best + tolerance))
        row = int(rng.choice(ties)) if len(ties) > 1 else int(ties[0])
        uri = candidates.uris[row]
        assert uri is not None  # rows without a URI carry NOT_IN_MPD_DIR
        if available(uri):
            break
        reasons[row] = Reason.UNKNOWN_TO_MPD
    terms = _Terms(emotion, loudness, brightness, onsets)
    top: tuple[Ranked, ...] = ()
    excluded: tuple[Ranked, ...] = ()
    if explain:
        top = _ranked(candidates, _nearest(reasons == 0, dist, explain), dist, reasons, terms)
        excluded = _ranked(candidates, _nearest(reasons != 0, dist, explain), dist, reasons, terms)
    jumps = (math.nan, math.nan, math.nan)
    if ending is not None:
        opened = candidates.acoustics[[0, 2, 4], row]
        jumps = (float(opened[0] - ending[0]), float(opened[1] - ending[1]), float(opened[2] - ending[2]))
    return Pick(
        path=candidates.paths[row],
        uri=uri,
        artist=candidates.artists[row],
        distance=float(dist[row]) if basis in ("forecast", "target") else 0.0,
        reference=reference,
        tail=np.asarray(tail, dtype=np.float32),
        forecast=predicted,
        top=top,
        excluded=excluded,
        excluded_counts=reason_counts(reasons) if explain else {},
        basis=basis,
        terms=terms[row],
        jumps=jumps,
        tied=len(ties),
        relaxed=verdict.relaxed,
        fallback=verdict.fallback,
    )


def blocked_counts(*, candidates: Candidates, base_reasons: np.ndarray, context: Context,
                   rules: Rules, picked: Sequence[Play] = ()) -> dict[str, int]:
    """Why nothing can be picked: the count of candidates per reason."""
    return reason_counts(_apply_rules(base_reasons, candidates, context, picked, rules).reasons)


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
    target_at: TargetAt | None = None,
    picked: Sequence[Play] = (),
) -> list[Pick]:
    """Pick ``count`` tracks in a row, each following the previous pick's trajectory tail.

    ``target_at(i, seconds)`` gives the target of the i-th pick starting ``seconds`` after the first
    (summed durations), or ``None`` to follow the forecast (arc over, or flow mode).
    """
    picks: list[Pick] = []
    picked = list(picked)
    elapsed = 0.0
    for number in range(count):
        target = target_at(number, elapsed) if target_at else None
        pick = pick_next(
            candidates=candidates, base_reasons=base_reasons, context=context, rules=rules,
            reference=reference, tail=tail, forecast=forecast, rng=rng, available=available,
            picked=picked, explain=explain, target=target,
        )
        if pick is None:
            break
        picks.append(pick)
        picked.append(Play(pick.uri, pick.artist, context.now))
        elapsed += candidates.duration(candidates.index[pick.uri])
        reference, tail = pick.uri, tail_of(pick.uri)[-TAIL_WINDOWS:]
    return picks
