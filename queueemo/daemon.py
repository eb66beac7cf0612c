"""``queueemo daemon``: keep MPD's queue topped up with emotionally seamless picks.

Wiring only. Components start in order inside ``try`` and stop in reverse in ``finally``: the index,
the MPD connection, the scheduler (periodic rescans, history pruning), the folder watcher. ``run()``
loops over a one-iteration ``tick()``: reconnect if needed (5 s, 10 s, … 60 s default), let the queue-keeping
policy (``keeper.py``) act on the queue, then ``idle`` on MPD until something changes. Other threads
(watcher, scheduler, signals) never touch MPD; they leave work and write to a wake-up pipe that
``idle`` also waits on. READY=1 goes to systemd once the index is open and MPD has answered; the
watcher and rescans start as soon as the music folder is known (from the config, or from MPD once it
answers). Permanent errors (a corrupt index, a refused password) leave ``run()`` at once; the CLI
exits with ``EX_CONFIG`` so systemd does not restart in a loop.
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

from queueemo.errors import AccessError, DatabaseError, PlayerError, QueueemoError
from queueemo.player import Player, uri_for

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from queueemo.config import Settings
    from queueemo.keeper import Keeper
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
        self.at_maximum = 0  # delays given at the cap since the last reset

    def next(self) -> float:
        """The delay to wait now; the following one is twice as long."""
        delay, self._next = self._next, min(self._next * 2, self.maximum)
        self.at_maximum += delay >= self.maximum
        return delay

    def reset(self) -> None:
        """Start again from the minimum (after a successful connect)."""
        self._next = self.minimum
        self.at_maximum = 0


class Daemon:
    """The queue keeper; ``run()`` blocks until ``stop()`` (or SIGTERM/SIGINT).

    ``player`` is the MPD edge (default: a ``Player`` on ``settings.mpd``); tests may pass their own.
    """

    def __init__(self, settings: Settings, *, player: Player | None = None,
                 forecast: Forecaster | None = None) -> None:
        self.settings = settings
        self.forecast = forecast
        self.player = player if player is not None else Player(settings.mpd)
        self.backoff = Backoff(settings.daemon.reconnect_min_s, settings.daemon.reconnect_max_s)
        self._database_backoff = Backoff(settings.daemon.reconnect_min_s, settings.daemon.reconnect_max_s)
        self._database_away = threading.Event()  # a database server was lost; tick() reconnects
        self._database_lost_at = 0.0
        self._failing_with: str | None = None  # the error every tick has met since the last good one
        self._rescan_missed = threading.Event()  # a rescan failed while it was away: run it again
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._updates: queue.SimpleQueue[str] = queue.SimpleQueue()  # MPD URIs to update
        self._reload = threading.Event()
        self._music_directory: str | None = None
        self._rescan: Rescanner | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._stops: list[Callable[[], None]] = []
        self._ready = False
        self._warned_no_roots = False
        self.library: Library | None = None
        self.queuer: Queuer | None = None
        self.keeper: Keeper | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run()`` to return; safe from signal handlers and other threads."""
        self._stop.set()
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe already wakes; a closed one means stopped
            os.write(self._wake_w, b"!")

    def run(self) -> None:
        """Start everything in order, loop over ``tick()`` until stopped, stop in reverse.

        Raises ``DatabaseError`` (unusable index) and ``AccessError`` (MPD refused us): permanent.
        """
        from queueemo.keeper import Keeper
        from queueemo.queueing import Queuer

        stops = self._stops
        stops.append(self._close_pipe)
        try:
            self._install_signal_handlers(stops)
            self.library = self._open_library()
            stops.append(self.library.close)
            stops.append(self.player.close)
            self.queuer = Queuer(self.library, self.player, self.settings.picker,
                                 self.settings.arc_state_path, forecast=self.forecast)
            self.keeper = Keeper(self.player, self.queuer, self.settings.daemon, self._record_play)
            stops.append(self._start_scheduler())
            self._start_library_upkeep()
            while not self._stop.is_set():
                self.tick()
        finally:
            if self._ready:
                sd_notify("STOPPING=1")
            for stop in reversed(stops):
                try:
                    stop()
                except Exception:  # stopping the rest matters more than one failure
                    log.exception("error while stopping")
            if self._ready or self._stop.is_set():
                log.info("queueemo daemon stopped")

    def _open_library(self) -> Library:
        """Open the index; a damaged SQLite file is refused now rather than failing every pick."""
        from queueemo.library.db import open_configured

        library = open_configured(self.settings.database_url, self.settings.library)
        if library.engine.url.get_backend_name() == "sqlite":
            verdict = library.integrity_check()
            if verdict != "ok":
                library.close()
                raise DatabaseError(
                    f"{library.where} is damaged ({verdict[:200]}); move it away to start a new "
                    "index, or pass another --db"
                )
        return library

    def _close_pipe(self) -> None:
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _install_signal_handlers(self, stops: list[Callable[[], None]]) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.signal(signum, lambda *_: self.stop())
            stops.append(lambda signum=signum, previous=previous: signal.signal(signum, previous))

    def _connect(self) -> None:
        assert self.queuer is not None and self.keeper is not None
        self.player.connect()
        self.backoff.reset()
        self._music_directory = self.player.music_directory()
        self.keeper.reset()
        self.queuer.reload()
        self._start_library_upkeep()
        if not self._ready:
            self._ready = True
            sd_notify("READY=1")
            log.info("queueemo daemon ready")
        sd_notify(f"STATUS=keeping the queue of MPD at {self.player.address}")

    def _roots(self) -> list[str]:
        roots = list(self.settings.library.music_roots)
        if not roots and self._music_directory:
            roots = [self._music_directory]
        return [os.path.abspath(os.path.expanduser(r)) for r in roots if os.path.isdir(r)]

    def _start_scheduler(self) -> Callable[[], None]:
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(self._prune_history, "interval", hours=24, id="prune-history",
                          next_run_time=datetime.now(), max_instances=1, coalesce=True)
        scheduler.start()
        self._scheduler = scheduler
        return lambda: scheduler.shutdown(wait=False)

    def _start_library_upkeep(self) -> None:
        """Start the rescans and the watcher once the music folders are known (only once)."""
        if self._rescan is not None:
            return
        self._rescan = self._make_rescanner()
        if self._rescan is None:
            return
        hours = self.settings.daemon.rescan_interval_hours
        if hours > 0 and self._scheduler is not None:  # first at once: files changed while it was down
            self._scheduler.add_job(self._rescan, "interval", hours=hours, id="rescan",
                                    next_run_time=datetime.now(), max_instances=1, coalesce=True)
        if self.settings.daemon.watch:
            self._stops.append(self._start_watcher(self._rescan))

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
            if self.player.connected and not self._warned_no_roots:
                self._warned_no_roots = True
                log.warning("no music folder to watch or rescan: set [library] music_roots "
                            "(or let MPD tell its music_directory over a local socket)")
            return None
        options = ScanOptions.from_settings(self.settings.library, self.settings.emotion,
                                            small_scans_in_process=False, fork_server=False,
                                            should_stop=self._stop.is_set)
        assert self.library is not None
        return Rescanner(self.library, roots, options, self._after_rescan, self._rescan_failed)

    def _after_rescan(self, paths: set[str]) -> None:
        """(Scan thread) have MPD look at the changed folders and the picker reload the index."""
        for path in paths:
            folder = path if os.path.isdir(path) else os.path.dirname(path)
            uri = uri_for(folder, "", self._music_directory) if self._music_directory else ""
            if uri is not None:
                self._updates.put(uri)
        self._reload.set()
        self._wake()

    def _rescan_failed(self, exc: QueueemoError) -> None:
        """(Scan thread) a rescan failed: run it again once a lost database is back, else log it."""
        if self._database_lost(exc):
            self._rescan_missed.set()
        else:
            log.error("rescan failed: %s", exc)

    def _prune_history(self) -> None:
        from queueemo.library.candidates import prune_changes
        from queueemo.library.history import prune_history

        assert self.library is not None
        try:
            prune_history(self.library, time.time() - self.settings.daemon.history_days * 86400)
            with self.library.session() as session:
                prune_changes(session)
        except QueueemoError as exc:
            if not self._database_lost(exc):
                log.error("history pruning failed: %s", exc)

    # -- the database server going away and coming back ------------------------------------------

    def _database_lost(self, exc: QueueemoError) -> bool:
        """(Any thread) whether ``exc`` means the database server is away; the first says so in one
        line and has ``tick()`` reconnect with growing delays."""
        from queueemo.library.db import is_transient

        if not (isinstance(exc, DatabaseError) and self.library is not None and self.library.served
                and is_transient(exc)):
            return False
        if not self._database_away.is_set():
            self._database_away.set()
            self._database_lost_at = time.monotonic()
            log.warning("lost the database (%s); reconnecting with growing delays", exc)
            self._wake()
        return True

    def _reconnect_database(self) -> None:
        """(Main thread) wait, then try the database again; once it answers, catch up on the rest."""
        self._sleep(self._database_backoff.next())
        assert self.library is not None
        if self._stop.is_set():
            return
        try:
            self.library.ping()
        except DatabaseError as exc:
            if self._database_lost(exc):
                log.debug("database still away: %s", exc)
                return
            raise
        self._database_away.clear()
        self._database_backoff.reset()
        log.info("database back after %.0f s", time.monotonic() - self._database_lost_at)
        if self._rescan_missed.is_set() and self._rescan is not None and self._scheduler is not None:
            self._rescan_missed.clear()
            self._scheduler.add_job(self._rescan, id="rescan-after-database", replace_existing=True)

    def _record_play(self, uri: str, artist: str, at: float) -> None:
        from queueemo.library.history import record_play

        assert self.library is not None
        record_play(self.library, uri, artist, at)

    # -- the loop -------------------------------------------------------------------------------

    def tick(self) -> None:
        """One iteration: (re)connect, keep the queue, wait for MPD or a wake-up."""
        assert self.keeper is not None
        if self._database_away.is_set():
            self._reconnect_database()
            return
        if not self.player.connected:
            try:
                self._connect()
            except AccessError:
                raise
            except PlayerError as exc:
                delay = self.backoff.next()
                if delay < self.backoff.maximum:
                    log.warning("%s; retrying in %.3g s", exc, delay)
                elif self.backoff.at_maximum == 1:  # a long outage: one line, not one a minute
                    log.warning("%s; retrying every %.3g s (not logged again until it answers)", exc, delay)
                sd_notify(f"STATUS=waiting for MPD at {self.player.address}")
                self._sleep(delay)
                return
        try:
            self._apply_updates()
            self.keeper.keep(self.player.queue())
            changed = self.player.idle(min(IDLE_TIMEOUT_S, self.keeper.wake_in() or IDLE_TIMEOUT_S),
                                       self._wake_r)
        except AccessError:
            raise
        except PlayerError as exc:
            if not self.player.connected:
                log.warning("lost MPD: %s", exc)
                return
            log.error("%s", exc)
            changed = set()
            self._sleep(self.backoff.minimum)
        except QueueemoError as exc:  # e.g. the index is locked for a while: keep going
            if not self._database_lost(exc):
                self._log_loop_error(str(exc))
                self._sleep(self.backoff.minimum)
            return
        if self._failing_with is not None:
            log.info("working again after: %s", self._failing_with)
            self._failing_with = None
        self._drain_wake_pipe()
        if "database" in changed:
            self.player.database_changed()
            self._reload.set()

    def _log_loop_error(self, message: str) -> None:
        """Log an error that stopped a tick: once while every tick meets it again, then at debug."""
        if message == self._failing_with:
            log.debug("still: %s", message)
            return
        self._failing_with = message
        log.error("%s (retrying; logged again only if it changes)", message)

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
