"""The queue-keeping policy: what the daemon does to MPD's queue after each change.

One ``keep(state)`` per wake-up: record the song that started, crop played songs, then top up to the
watermark (seeding an empty queue) — unless the user is steering. The user steers when they clear
the queue or add songs themselves (wait ``suspend_after_user_s`` before refilling, like ashuffle's
suspend), or when MPD is in single or repeat mode (leave the queue alone unless
``act_in_single_or_repeat``). Random and consume mode undo the order; that is said once.

The player, the planner and the play recorder are passed in, so the policy is unit-tested with a
fake player; the real-MPD tests are the integration layer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from queueemo.config import DaemonSettings
    from queueemo.picker import Pick
    from queueemo.player import QueueState

log = logging.getLogger(__name__)

Recorder = Callable[[str, str, float], None]  # (uri, artist, unix time) of a song that started

_MODE_WARNINGS = {
    "random": "MPD is in random mode: it plays the queue out of order, so picks will not follow "
              "each other (mpc random off)",
    "consume": "MPD is in consume mode: it removes songs as they play, so the queue's order is not "
               "kept as history ([daemon] keep_played has nothing to crop; mpc consume off)",
}


class QueuePlayer(Protocol):
    """What the policy needs from MPD (``queueemo.player.Player`` offers it)."""

    def queue(self) -> QueueState:
        """The queue and the playing position."""
        ...

    def delete(self, start: int, end: int) -> None:
        """Remove queue positions ``start`` ≤ pos < ``end``."""
        ...

    def play(self, song_id: int) -> None:
        """Play the queued song ``song_id``."""
        ...


class Planner(Protocol):
    """What the policy needs from the picker side (``queueemo.queueing.Queuer`` offers it)."""

    def plan(self, count: int, *, state: QueueState | None = None) -> list[Pick]:
        """Choose ``count`` tracks to follow ``state``'s queue."""
        ...

    def append(self, picks: list[Pick]) -> list[int]:
        """Add ``picks`` to the end of MPD's queue; the queue song ids MPD gave them."""
        ...


class Keeper:
    """Keeps MPD's queue topped up while respecting what the user does with it."""

    def __init__(self, player: QueuePlayer, planner: Planner, settings: DaemonSettings,
                 record: Recorder, *, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.player = player
        self.planner = planner
        self.settings = settings
        self.record = record
        self.clock = clock
        self.wall_clock = wall_clock
        self._warned: set[str] = set()
        self.reset()

    def reset(self) -> None:
        """Forget what was seen (after a reconnect: MPD may have restarted with another queue)."""
        self._last_song_id: int | None = None
        self._seen: frozenset[int] | None = None
        self._suspended_until = 0.0
        self._leaving_alone = False
        self._had_current = False

    @property
    def suspended(self) -> bool:
        """Whether refilling waits because the user changed the queue a moment ago."""
        return self.clock() < self._suspended_until

    def wake_in(self) -> float | None:
        """Seconds until a suspension ends (the caller's wait must not be longer), else ``None``."""
        remaining = self._suspended_until - self.clock()
        return remaining if remaining > 0 else None

    def keep(self, state: QueueState) -> None:
        """One round of the policy on the queue as it is now."""
        self._record_play(state)
        self._warn_about_modes(state)
        self._notice_the_user(state)
        ran_off_the_end = self._ran_off_the_end(state)
        self._had_current = state.current is not None
        if self._leave_alone(state):
            self._seen = _ids(state.entries)
            return
        added: list[int] = []
        if ran_off_the_end and not self.suspended:
            state, added = self._play_on(state)
        else:
            state = self._crop(state)
            if not self.suspended:
                state, added = self._top_up(state)
        # What the daemon added counts as seen even if the user cleared it before the queue was read
        # again: the next round then sees a clear, not a queue that was always empty.
        self._seen = _ids(state.entries) | frozenset(added)

    # -- the steps ------------------------------------------------------------------------------

    def _record_play(self, state: QueueState) -> None:
        current = state.current_entry
        if state.state == "play" and current is not None and current.song_id != self._last_song_id:
            self.record(current.uri, current.artist, self.wall_clock())
            self._last_song_id = current.song_id

    def _warn_about_modes(self, state: QueueState) -> None:
        for mode, warning in _MODE_WARNINGS.items():
            if not getattr(state, mode):
                self._warned.discard(mode)
            elif mode not in self._warned:
                self._warned.add(mode)
                log.warning("%s", warning)

    def _notice_the_user(self, state: QueueState) -> None:
        """Suspend refilling when the queue changed in a way the daemon did not make."""
        if self._seen is None or self.settings.suspend_after_user_s <= 0:
            return
        if not state.entries and self._seen:
            why = "the queue was cleared"
        elif _ids(state.entries) - self._seen:
            why = "songs were added by hand"
        else:
            return
        if self.suspended:  # the user goes on (an album added song by song): one line is enough
            log.debug("%s: still waiting before refilling", why)
        else:
            log.info("%s: waiting %.3g s before refilling ([daemon] suspend_after_user_s)", why,
                     self.settings.suspend_after_user_s)
        self._suspended_until = self.clock() + self.settings.suspend_after_user_s

    def _leave_alone(self, state: QueueState) -> bool:
        steering = (state.single or state.repeat) and not self.settings.act_in_single_or_repeat
        if steering and not self._leaving_alone:
            log.info("MPD is in %s mode: leaving the queue alone "
                     "([daemon] act_in_single_or_repeat)", "single" if state.single else "repeat")
        self._leaving_alone = steering
        return steering

    def _ran_off_the_end(self, state: QueueState) -> bool:
        """Whether MPD just stopped past the queue's last song (skipped or played past it).

        A stop by the user keeps MPD's current song; running off the end clears it.
        """
        return (self._had_current and state.state == "stop" and state.current is None
                and bool(state.entries) and not (_ids(state.entries) - (self._seen or frozenset())))

    def _play_on(self, state: QueueState) -> tuple[QueueState, list[int]]:
        """After the queue ran out: crop it, queue what follows its last song, and play that."""
        state = self._crop(state, played=len(state.entries))
        added = self._append(self.settings.watermark, state)
        if not added:
            return state, []
        self.player.play(added[0])
        log.info("the queue ran out (skipped or played past its end): playing on")
        return self.player.queue(), added

    def _crop(self, state: QueueState, played: int | None = None) -> QueueState:
        """Remove the played songs (those before the current one, or the first ``played``) but the
        last ``keep_played`` of them."""
        played = state.current if played is None else played
        keep = self.settings.keep_played
        if played is None or played <= keep:
            return state
        self.player.delete(0, played - keep)
        log.debug("cropped %d played song(s)", played - keep)  # one per song: not news
        return self.player.queue()

    def _top_up(self, state: QueueState) -> tuple[QueueState, list[int]]:
        """The queue after topping it up to the watermark, and the song ids added."""
        missing = self.settings.watermark - state.upcoming
        added = self._append(missing, state) if missing > 0 else []
        return (self.player.queue(), added) if added else (state, [])

    def _append(self, count: int, state: QueueState) -> list[int]:
        """Plan ``count`` tracks to follow ``state`` and add them; the song ids added (none: said why)."""
        picks = self.planner.plan(count, state=state)
        if not picks:
            log.warning("nothing left to pick: all tracks excluded by the rules, or none analysed")
            return []
        return self.planner.append(picks)


def _ids(entries: Sequence) -> frozenset[int]:
    return frozenset(entry.song_id for entry in entries)
