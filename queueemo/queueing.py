"""Glue shared by ``queueemo next`` and the daemon: index + history + MPD queue → picks → MPD.

The picker stays pure; this module does the reading and writing around it. Candidates are loaded
from the index once into compact numpy columns and reused until ``reload()`` (the daemon calls it
when the watcher stored new analyses or MPD's database changed): then only the tracks changed since
are read again, unless MPD's music directory changed (every URI does) or ``full`` is asked.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from queueemo import picker
from queueemo.player import Player, QueueState

if TYPE_CHECKING:
    from queueemo.arc import Arc
    from queueemo.config import PickerSettings, Settings
    from queueemo.errors import QueueemoError
    from queueemo.library.candidates import Loaded
    from queueemo.library.db import Library

log = logging.getLogger(__name__)

HISTORY_LIMIT = 1000  # plays looked at by the rules; plenty for any repeat window of hours


def picker_candidates(library: Library, music_directory: str | None) -> picker.Candidates:
    """Every analysed track of the index as picker arrays (URIs relative to ``music_directory``)."""
    from queueemo.library.candidates import load_candidates as candidate_table

    with library.session() as session:
        return picker.Candidates.of(candidate_table(session, music_directory))


def trajectory_of(library: Library, path: str) -> np.ndarray:
    """The stored trajectory of the track at ``path`` (empty when it is not analysed)."""
    from queueemo.library.queries import trajectory_at

    with library.session() as session:
        return trajectory_at(session, path)


@dataclass
class Queuer:
    """Picks tracks for an MPD queue and appends them.

    In arc mode (``[picker] mode = "arc"``) the arc starts at ``arc_start`` (Unix seconds; default:
    read from, or written to, the arc state file, so the daemon and ``next`` share it across restarts;
    ``keep_arc_start=False``, a dry run, only reads it).
    """

    library: Library
    player: Player
    picking: PickerSettings
    arc_state: Path  # where the arc's start is kept (config's ``Settings.arc_state_path``)
    forecast: picker.Forecaster | None = None  # default: the shipped model (queueemo.forecast)
    rng: np.random.Generator | None = None
    arc_start: float | None = None
    keep_arc_start: bool = True

    def __post_init__(self) -> None:
        self.rules = picker.Rules.from_settings(self.picking)
        self.rng = self.rng or np.random.default_rng()
        self._loaded: Loaded | None = None
        self._stale = self._full = False
        self._candidates: picker.Candidates | None = None
        self._reasons: np.ndarray | None = None
        self._fallback_logged = False
        self.last_counts: dict[str, int] = {}  # per reason, when the last plan came up short

    def reload(self, *, full: bool = False) -> None:
        """Have the next pick read the tracks changed in the index since the last load (``full``: all)."""
        self._stale = True
        self._full = self._full or full

    def candidates(self) -> tuple[picker.Candidates, np.ndarray]:
        """The candidates and their static exclusion reasons: loaded on first use, updated on ``reload``."""
        # ``_candidates`` and ``_reasons`` are set and cleared with ``_loaded``: one test covers all three.
        if self._loaded is None or self._stale:
            from queueemo.library.candidates import load_all, load_changes

            started = time.perf_counter()
            music = self.player.music_directory()
            loaded = self._loaded
            full = loaded is None or self._full or loaded.music_directory != music
            if full:  # let the old table go first: one table in memory at a time
                loaded = self._loaded = self._candidates = self._reasons = None
            with self.library.session() as session:
                fresh = None if full else load_changes(session, loaded, time.time())
                if fresh is None:  # too many changes, or the log was pruned past this reader
                    loaded = self._loaded = self._candidates = self._reasons = None
                    full, fresh = True, load_all(session, music, time.time())
            self._stale = self._full = False
            if loaded is None or fresh.table is not loaded.table:
                self._candidates = picker.Candidates.of(fresh.table)
                self._reasons = picker.static_reasons(self._candidates, self.rules)
            self._loaded = fresh
            if full:
                _return_freed_memory()
            log.info("%s %d candidates in %.2f s", "loaded" if full else "updated to",
                     len(self._candidates), time.perf_counter() - started)
        assert self._candidates is not None and self._reasons is not None
        return self._candidates, self._reasons

    def _tail_of(self, uri: str) -> np.ndarray:
        """The reference's windows just before its ending begins (its last windows without one)."""
        from queueemo.boundaries import tail_rows

        candidates, _ = self.candidates()
        row = candidates.index.get(uri)
        if row is None:
            return np.zeros((0, 2), dtype=np.float32)
        trajectory = trajectory_of(self.library, candidates.paths[row])
        return trajectory[tail_rows(len(trajectory), candidates.ending_start(row), picker.TAIL_WINDOWS)]

    def _context(self, state: QueueState, now: float) -> picker.Context:
        from queueemo.library.history import recent_plays

        since = now - max(self.rules.repeat_window_s, 1.0)
        plays = recent_plays(self.library, since, limit=HISTORY_LIMIT)
        return picker.Context(
            now=now,
            history=tuple(picker.Play(uri, artist, at) for uri, artist, at in plays),
            queue=tuple(picker.Play(e.uri, e.artist, now) for e in state.entries),
        )

    def resolve(self, song: str) -> str:
        """An MPD URI for ``song`` given as a URI or a file path; one-line error if unknown."""
        from queueemo.errors import QueueemoError

        candidates, _ = self.candidates()
        if song in candidates.index:
            return song
        path = os.path.abspath(os.path.expanduser(song))
        if path in candidates.paths:
            uri = candidates.uris[candidates.paths.index(path)]
            if uri is not None:
                return uri
        music = self.player.music_directory()
        if music and path.startswith(os.path.normpath(music) + os.sep):
            uri = os.path.relpath(path, music)
            if self.player.knows(uri, quiet=True):
                return uri
        if self.player.knows(song, quiet=True):
            return song
        why = self._describe_path(path)
        if why != "not in the index":  # indexed, but nothing to follow: say why rather than "unknown"
            raise QueueemoError(f"{song} is {why}: only analysed songs MPD can play can be followed")
        raise QueueemoError(f"unknown song {song!r}: give an analysed file's path or its MPD URI "
                            "(as `mpc listall` prints it)")

    def describe_unanalysed(self, uri: str) -> str:
        """Why ``uri`` has no trajectory: failed (with the reason), pending, or not in the index."""
        music = self.player.music_directory()
        return self._describe_path(os.path.join(music, uri) if music else uri)

    def _describe_path(self, path: str) -> str:
        from queueemo.library import get_track_by_path

        with self.library.session() as session:
            track = get_track_by_path(session, path)
            if track is None:
                return "not in the index"
            if track.status == "failed":
                return f"a track whose analysis failed ({track.error})"
            if track.status == "ok":
                return "analysed, but not in MPD's database (run `mpc update`?)"
            return "not analysed yet"

    def _seed(self, candidates: picker.Candidates) -> picker.Pick | None:
        """The configured seed track, when set and analysed."""
        seed = self.picking.seed_track
        if not seed:
            return None
        path = os.path.abspath(os.path.expanduser(seed))
        row = candidates.index.get(seed)
        if row is None and path in candidates.paths:
            row = candidates.paths.index(path)
        uri = candidates.uris[row] if row is not None else None
        if row is None or uri is None or not self.player.knows(uri, quiet=True):
            log.warning("seed track %s is not an analysed track MPD can play; picking at random",
                        seed)
            return None
        empty = np.zeros((0, 2), dtype=np.float32)
        return picker.Pick(path=candidates.paths[row], uri=uri, artist=candidates.artists[row],
                           distance=0.0, reference=None, tail=empty, forecast=empty, basis="given",
                           given="[picker] seed_track (nothing to follow)")

    def _queued_seconds(self, state: QueueState) -> float:
        """Seconds of music before a track added now would start: what is left of the current song,
        then the songs queued after it (known durations only)."""
        candidates, _ = self.candidates()
        first = state.current if state.current is not None else 0
        rows = [candidates.index.get(e.uri) for e in state.entries[first:]]
        seconds = sum(candidates.duration(r) for r in rows if r is not None)
        if state.current is not None and rows[0] is not None:
            seconds -= min(state.elapsed or 0.0, candidates.duration(rows[0]))
        return seconds

    def _arc_targets(self, arc: Arc | None, state: QueueState, now: float) -> picker.TargetAt | None:
        if arc is None and self.picking.mode == "arc":
            from queueemo.arc import parse_arc

            arc = parse_arc(self.picking.arc, self.picking.arc_minutes)
            if self.arc_start is None:
                self.arc_start = arc_started(self.arc_state, self.picking.arc,
                                             self.picking.arc_minutes, now, keep=self.keep_arc_start)
                # a new arc starts exactly now; a kept one earlier, if only by a moment
                _say_where_the_arc_is(self.picking, self.arc_state, now - self.arc_start,
                                      resumed=self.arc_start != now)
            offset = now - self.arc_start + self._queued_seconds(state)
        elif arc is not None:
            offset = self._queued_seconds(state)
        else:
            return None
        return lambda number, elapsed: arc.target(offset + elapsed)

    def plan(self, count: int, *, state: QueueState | None = None, explain: int = 0,
             now: float | None = None, follow: str | None = None, arc: Arc | None = None,
             ) -> list[picker.Pick]:
        """Choose ``count`` tracks to follow the queue, or the song ``follow`` (nothing is changed).

        ``arc`` (or ``[picker] mode = "arc"``) sets targets along an emotion arc; once it is over,
        picks follow the forecast again.
        """
        state = state or self.player.queue()
        now = time.time() if now is None else now
        candidates, reasons = self.candidates()
        context = self._context(state, now)
        if follow:  # the rules count the followed song as if it had just played
            row = candidates.index.get(follow)
            artist = candidates.artists[row] if row is not None else ""
            context = dataclasses.replace(context, followed=picker.Play(follow, artist, now))
        picks: list[picker.Pick] = []
        reference_uri = follow or (state.reference.uri if state.reference else None)
        if reference_uri is None:
            seed = self._seed(candidates)
            if seed is not None:
                picks.append(seed)
                reference_uri = seed.uri
                count -= 1
        tail = self._tail_of(reference_uri) if reference_uri else np.zeros((0, 2), np.float32)
        why = ""
        if reference_uri and not len(tail):
            why = self.describe_unanalysed(reference_uri)
        picked = [picker.Play(p.uri, p.artist, now) for p in picks]
        picks += picker.pick_many(
            count, candidates=candidates, base_reasons=reasons, context=context, rules=self.rules,
            reference=reference_uri, tail=tail, tail_of=self._tail_of,
            forecast=self.forecast or _default_forecast, rng=self.rng,
            available=self.player.knows, explain=explain, picked=picked,
            target_at=self._arc_targets(arc, state, now),
        )
        if why and picks:  # only beside a pick: "nothing to pick" says enough on its own
            log.warning("%s is %s; following it with a random track", reference_uri, why)
        self._note(picks, count, candidates, reasons, context)
        return [dataclasses.replace(p, unanalysed=why) if p.basis == "unanalysed" else p
                for p in picks]

    def _note(self, picks: list[picker.Pick], wanted: int, candidates: picker.Candidates,
              reasons: np.ndarray, context: picker.Context) -> None:
        """Log the least-recently-played fallback once; keep the counts when a plan came up short."""
        if any(p.fallback for p in picks) and not self._fallback_logged:
            log.warning("the repeat window has consumed the library: picking among the least "
                        "recently played tracks")
            self._fallback_logged = True
        self.last_counts = {}
        if len(picks) < wanted:
            played = [picker.Play(p.uri, p.artist, context.now) for p in picks]
            self.last_counts = picker.blocked_counts(candidates=candidates, base_reasons=reasons,
                                                     context=context, rules=self.rules, picked=played)

    def path(self, start: str, end: str, *, count: int | None = None, minutes: float | None = None,
             explain: int = 0, now: float | None = None) -> list[picker.Pick]:
        """Tracks from ``start``'s emotion to ``end``'s in even steps, ending on ``end``.

        ``start`` is queued first unless it already ends the queue. ``count`` is the number of
        tracks after ``start`` (``end`` included); ``minutes`` sets it from the median duration.
        """
        from queueemo.arc import path_targets
        from queueemo.errors import QueueemoError

        candidates, reasons = self.candidates()
        state = self.player.queue()
        now = time.time() if now is None else now
        uris = [self.resolve(song) for song in (start, end)]
        rows = [candidates.index.get(u) for u in uris]
        for song, row in zip((start, end), rows, strict=True):
            if row is None:
                raise QueueemoError(f"{song} has no analysis, so its emotion is unknown "
                                    "(run `queueemo scan` on it)")
        start_uri, end_uri = uris
        if start_uri == end_uri:
            raise QueueemoError(f"FROM and TO are the same song ({start_uri}): a path needs two; for "
                                "songs that follow it: queueemo next --from FROM -n N")
        if count is None:
            known = candidates.durations[np.isfinite(candidates.durations)] \
                if candidates.durations is not None else np.zeros(0)
            typical = float(np.median(known)) if len(known) else 180.0
            count = max(1, round((minutes or 30.0) * 60.0 / max(typical, 1.0)))
        tail = self._tail_of(start_uri)
        begin = tail.mean(axis=0) if len(tail) else candidates.opening[rows[0]]
        targets = path_targets(begin, candidates.opening[rows[1]], count)
        picks: list[picker.Pick] = []
        if state.reference is None or state.reference.uri != start_uri:
            empty = np.zeros((0, 2), dtype=np.float32)
            picks.append(picker.Pick(path=candidates.paths[rows[0]], uri=start_uri,
                                     artist=candidates.artists[rows[0]], distance=0.0,
                                     reference=None, tail=empty, forecast=empty, basis="given",
                                     given="the path's start (FROM)"))
        blocked = reasons.copy()
        blocked[rows] = picker.Reason.QUEUED  # neither end in between
        context = self._context(state, now)
        between = picker.pick_many(
            count - 1, candidates=candidates, base_reasons=blocked, context=context,
            rules=self.rules, reference=start_uri, tail=tail, tail_of=self._tail_of,
            forecast=self.forecast or _default_forecast, rng=self.rng,
            available=self.player.knows, explain=explain,
            picked=[picker.Play(p.uri, p.artist, now) for p in picks],
            target_at=lambda number, elapsed: targets[number],
        )
        self._note(between, count - 1, candidates, blocked, context)
        previous = between[-1].uri if between else start_uri
        picks += between
        picks.append(picker.Pick(path=candidates.paths[rows[1]], uri=end_uri,
                                 artist=candidates.artists[rows[1]], distance=0.0, reference=previous,
                                 tail=self._tail_of(previous), forecast=targets[-1:],
                                 basis="given", given="the path's end (TO)"))
        return picks

    def append(self, picks: list[picker.Pick]) -> list[int]:
        """Add ``picks`` to the end of MPD's queue; the queue song ids MPD gave them."""
        song_ids = []
        for pick in picks:
            song_ids.append(self.player.add(pick.uri))
            log.info("queued %s (distance %.3f)", pick.uri, pick.distance)
        return song_ids


def _return_freed_memory() -> None:
    """Hand the heap freed by a full load back to the system (glibc keeps ~100 MB of it otherwise).

    A streamed load frees its batches between longer-lived arrays, so the freed memory sits in holes
    that glibc does not trim by itself; ``malloc_trim`` releases it.
    """
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to hand back this way
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def arc_started(state: Path, spec: str, minutes: float, now: float, *, keep: bool = True) -> float:
    """When the configured arc began: read from ``state``, or ``now`` (written) for a new arc.

    The same arc (spec and minutes) keeps its start across restarts, also once over (then picks
    follow the forecast); another arc starts now. Delete the file to run the same arc again.
    ``keep=False`` (a dry run) leaves the file alone: a new arc would start now, but not yet.
    """
    import json

    try:
        saved = json.loads(state.read_text(encoding="utf-8"))
        if saved.get("arc") == spec and saved.get("minutes") == minutes:
            return float(saved["started_at"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # missing or unreadable: a new arc
    if not keep:
        return now
    try:
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"arc": spec, "minutes": minutes, "started_at": now}),
                         encoding="utf-8")
    except OSError as exc:
        log.warning("cannot keep the arc's start in %s (%s); it restarts with the process", state, exc)
    return now


def _say_where_the_arc_is(picking: PickerSettings, state: Path, elapsed_s: float, *, resumed: bool) -> None:
    """One line when arc mode first picks: a new arc, or one resumed (perhaps over) after a restart."""
    spec, minutes = picking.arc, picking.arc_minutes
    if not resumed:
        log.info("arc mode: %s over %g min, starting now", spec, minutes)
    elif elapsed_s < minutes * 60:
        log.info("arc mode: %s over %g min, resumed %.0f min in (its start is kept in %s)", spec,
                 minutes, elapsed_s / 60, state)
    else:
        log.info("arc mode: %s over %g min ended %.0f min ago, so picks follow the forecast (delete "
                 "%s to run it again)", spec, minutes, elapsed_s / 60 - minutes, state)


def _default_forecast(history: np.ndarray, steps: int) -> np.ndarray:
    import queueemo

    return queueemo.forecast(history, steps)


def _blocked(counts: dict[str, int]) -> str:
    """Why tracks were left out, most common reason first."""
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"({why})" if why else "(the index has no analysed track)"


def _nothing_to_pick(counts: dict[str, int]) -> QueueemoError:
    from queueemo.errors import QueueemoError

    return QueueemoError(
        f"nothing to pick: no analysed track that MPD knows passes the rules {_blocked(counts)}"
        " (run `queueemo scan`, `mpc update`, or relax [picker] settings)"
    )


def queue_next(settings: Settings, count: int, *, dry_run: bool = False, explain: int = 0,
               forecast: picker.Forecaster | None = None, follow: str | None = None,
               arc: Arc | None = None) -> list[picker.Pick]:
    """``queueemo next``: pick ``count`` tracks and append them unless ``dry_run``.

    ``follow`` (a file path or URI) replaces the queue's last song as the reference; ``arc`` sets
    targets along an emotion arc starting now.
    """
    from queueemo.library.db import open_configured

    with (open_configured(settings.database_url, settings.library, create=False) as library,
          Player(settings.mpd) as player):
        queuer = Queuer(library, player, settings.picker, settings.arc_state_path, forecast=forecast,
                        keep_arc_start=not dry_run)
        reference = queuer.resolve(follow) if follow else None
        picks = queuer.plan(count, explain=explain, follow=reference, arc=arc)
        if not picks:
            raise _nothing_to_pick(queuer.last_counts)
        if len(picks) < count:
            log.warning("only %d of %d tracks could be picked; the rules leave no more %s", len(picks),
                        count, _blocked(queuer.last_counts))
        if not dry_run:
            queuer.append(picks)
    return picks


def queue_path(settings: Settings, start: str, end: str, *, count: int | None = None,
               minutes: float | None = None, dry_run: bool = False, explain: int = 0,
               forecast: picker.Forecaster | None = None) -> list[picker.Pick]:
    """``queueemo path``: queue the tracks from ``start`` to ``end`` unless ``dry_run``."""
    from queueemo.library.db import open_configured

    with (open_configured(settings.database_url, settings.library, create=False) as library,
          Player(settings.mpd) as player):
        queuer = Queuer(library, player, settings.picker, settings.arc_state_path, forecast=forecast)
        picks = queuer.path(start, end, count=count, minutes=minutes, explain=explain)
        if not dry_run:
            queuer.append(picks)
    return picks
