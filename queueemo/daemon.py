"""``queueemo daemon``: keep MPD's queue topped up with emotionally seamless picks.

Wiring only. Components start in order inside ``try`` and stop in reverse in ``finally``: the index,
the MPD connection, the scheduler (periodic rescans, history pruning), the folder watcher. ``run()``
loops over a one-iteration ``tick()``: reconnect if needed (5 s, 10 s, … 1 h), record what started
playing, crop played songs, top up to the watermark, then ``idle`` on MPD until something changes.
Other threads (watcher, scheduler, signals) never touch MPD; they leave work and write to a wake-up
pipe that ``idle`` also waits on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from queueemo.errors import PlayerError, QueueemoError
from queueemo.player import Player, QueueState, uri_for

if TYPE_CHECKING:
    from queueemo.config import Settings
    from queueemo.library.db import Library
    from queueemo.library.watcher import Rescanner
    from queueemo.picker import Forecaster
    from queueemo.queueing import Queuer

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 60.0  # wake up now and then even if MPD stays silent


def sd_notify(message: str) -> None:
    """Tell systemd our state (``Type=notify``); does nothing outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(message.encode())
        except OSError as exc:
            log.warning("cannot notify systemd at %s: %s", address, exc)


class Backoff:
    """Growing delays between reconnection attempts: minimum, doubling, capped."""

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum, self.maximum = minimum, maximum
        self._next = minimum

    def next(self) -> float:
        """The delay to wait now; the following one is twice as long."""
        delay, self._next = self._next, min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        """Start again from the minimum (after a successful connect)."""
        self._next = self.minimum


class Daemon:
    """The queue keeper; ``run()`` blocks until ``stop()`` (or SIGTERM/SIGINT)."""

    def __init__(self, settings: Settings, *, forecast: Forecaster | None = None) -> None:
        self.settings = settings
        self.forecast = forecast
        self.player = Player(settings.mpd)
        self.backoff = Backoff(settings.daemon.reconnect_min_s, settings.daemon.reconnect_max_s)
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._updates: queue.SimpleQueue[str] = queue.SimpleQueue()  # MPD URIs to update
        self._reload = threading.Event()
        self._last_song_id: int | None = None
        self._music_directory: str | None = None
        self._rescan: Rescanner | None = None
        self.library: Library | None = None
        self.queuer: Queuer | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run()`` to return; safe from signal handlers and other threads."""
        self._stop.set()
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe already wakes; a closed one means stopped
            os.write(self._wake_w, b"!")

    def run(self) -> None:
        """Start everything in order, loop over ``tick()`` until stopped, stop in reverse."""
        from queueemo.library.db import open_library
        from queueemo.queueing import Queuer

        stops: list[Callable[[], None]] = [self._close_pipe]
        try:
            self._install_signal_handlers(stops)
            self.library = open_library(self.settings.database_url)
            stops.append(self.library.close)
            stops.append(self.player.close)
            self.queuer = Queuer(self.library, self.player, self.settings, forecast=self.forecast)
            self._connect_first()
            self._rescan = self._make_rescanner()
            stops.append(self._start_scheduler())
            if self.settings.daemon.watch and self._rescan is not None:
                stops.append(self._start_watcher(self._rescan))
            sd_notify("READY=1")
            log.info("queueemo daemon ready")
            while not self._stop.is_set():
                self.tick()
        finally:
            sd_notify("STOPPING=1")
            for stop in reversed(stops):
                try:
                    stop()
                except Exception:  # stopping the rest matters more than one failure
                    log.exception("error while stopping")
            log.info("queueemo daemon stopped")

    def _close_pipe(self) -> None:
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _install_signal_handlers(self, stops: list[Callable[[], None]]) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.signal(signum, lambda *_: self.stop())
            stops.append(lambda signum=signum, previous=previous: signal.signal(signum, previous))

    def _connect_first(self) -> None:
        """Try MPD once at start; if it is down, ``tick()`` keeps trying with backoff."""
        try:
            self._connect()
        except PlayerError as exc:
            log.warning("%s; will retry", exc)

    def _connect(self) -> None:
        self.player.connect()
        self.backoff.reset()
        self._music_directory = self.player.music_directory()
        self._last_song_id = None
        assert self.queuer is not None
        self.queuer.reload()

    def _roots(self) -> list[str]:
        roots = list(self.settings.library.music_roots)
        if not roots and self._music_directory:
            roots = [self._music_directory]
        return [os.path.abspath(os.path.expanduser(r)) for r in roots if os.path.isdir(r)]

    def _start_scheduler(self) -> Callable[[], None]:
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(daemon=True)
        hours = self.settings.daemon.rescan_interval_hours
        if hours > 0 and self._rescan is not None:
            scheduler.add_job(self._rescan, "interval", hours=hours, id="rescan",
                              max_instances=1, coalesce=True)
        scheduler.add_job(self._prune_history, "interval", hours=24, id="prune-history",
                          next_run_time=datetime.now(), max_instances=1, coalesce=True)
        scheduler.start()
        return lambda: scheduler.shutdown(wait=False)

    def _start_watcher(self, rescan: Rescanner) -> Callable[[], None]:
        from queueemo.library.watcher import Watcher

        watcher = Watcher(rescan.roots, rescan, self.settings.daemon.debounce_s)
        watcher.start()
        return watcher.stop

    def _make_rescanner(self) -> Rescanner | None:
        """The scan shared by the watcher and the scheduled rescans; ``None`` without folders."""
        from queueemo.library.scanner import ScanOptions
        from queueemo.library.watcher import Rescanner

        roots = self._roots()
        if not roots:
            log.warning("no music folder to watch or rescan: set [library] music_roots "
                        "(or let MPD tell its music_directory over a local socket)")
            return None
        lib = self.settings.library
        options = ScanOptions(jobs=lib.jobs, opening_windows=lib.opening_windows,
                              closing_windows=lib.closing_windows, small_scans_in_process=False)
        assert self.library is not None
        return Rescanner(self.library, roots, options, self._after_rescan)

    def _after_rescan(self, paths: set[str]) -> None:
        """(Scan thread) have MPD look at the changed folders and the picker reload the index."""
        for path in paths:
            folder = path if os.path.isdir(path) else os.path.dirname(path)
            uri = uri_for(folder, "", self._music_directory) if self._music_directory else ""
            if uri is not None:
                self._updates.put(uri)
        self._reload.set()
        self._wake()

    def _prune_history(self) -> None:
        from queueemo.library.history import prune_history

        assert self.library is not None
        try:
            prune_history(self.library, time.time() - self.settings.daemon.history_days * 86400)
        except QueueemoError as exc:
            log.error("history pruning failed: %s", exc)

    # -- the loop -------------------------------------------------------------------------------

    def tick(self) -> None:
        """One iteration: (re)connect, keep the queue, wait for MPD or a wake-up."""
        if not self.player.connected:
            try:
                self._connect()
            except PlayerError as exc:
                delay = self.backoff.next()
                log.warning("%s; retrying in %.3g s", exc, delay)
                self._sleep(delay)
                return
        try:
            self._apply_updates()
            self.keep_queue(self.player.queue())
            changed = self.player.idle(IDLE_TIMEOUT_S, self._wake_r)
        except PlayerError as exc:
            if not self.player.connected:
                log.warning("lost MPD: %s", exc)
                return
            log.error("%s", exc)
            changed = set()
            self._sleep(self.backoff.minimum)
        except QueueemoError as exc:  # e.g. the index is locked for a while: keep going
            log.error("%s", exc)
            self._sleep(self.backoff.minimum)
            return
        self._drain_wake_pipe()
        if "database" in changed:
            self.player.database_changed()
            self._reload.set()

    def _sleep(self, seconds: float) -> None:
        """Wait, but return at once on ``stop()`` (the pipe, unlike ``Event.wait``, is signal-safe)."""
        select.select([self._wake_r], [], [], seconds)

    def _drain_wake_pipe(self) -> None:
        while select.select([self._wake_r], [], [], 0)[0]:
            if not os.read(self._wake_r, 4096):
                break

    def _apply_updates(self) -> None:
        """(Main thread) pass on MPD updates and index reloads left by other threads."""
        uris: set[str] = set()
        while not self._updates.empty():
            uris.add(self._updates.get_nowait())
        for uri in sorted(uris):
            log.info("asking MPD to update %s", uri or "its database")
            self.player.update(uri)
        if self._reload.is_set():
            self._reload.clear()
            assert self.queuer is not None
            self.queuer.reload()

    def keep_queue(self, state: QueueState) -> None:
        """Record the song that started, crop old songs, top up to the watermark."""
        from queueemo.library.history import record_play

        assert self.library is not None and self.queuer is not None
        current = state.current_entry
        if state.state == "play" and current is not None and current.song_id != self._last_song_id:
            record_play(self.library, current.uri, current.artist, time.time())
            self._last_song_id = current.song_id
        keep = self.settings.daemon.keep_played
        if state.current is not None and state.current > keep:
            self.player.delete(0, state.current - keep)
            log.info("cropped %d played songs", state.current - keep)
            state = self.player.queue()
        missing = self.settings.daemon.watermark - state.upcoming
        if missing > 0:
            picks = self.queuer.plan(missing, state=state)
            if not picks:
                log.warning("nothing left to pick: all tracks excluded by the rules, or none analysed")
            self.queuer.append(picks)
