"""Live library: a watchdog observer on the music roots that rescans after bursts of changes.

A copy of an album fires hundreds of events; they are collected until the folders have been quiet
for ``debounce_s`` and then handed over as one batch. The scan itself is the ordinary incremental
scan (stat-only for unchanged files; moves keep their analysis by content hash), run under a lock so
the watcher and the scheduled rescans never write at the same time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from queueemo.errors import QueueemoError

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent

    from queueemo.library.db import Library
    from queueemo.library.scanner import ScanOptions

log = logging.getLogger(__name__)

OnChange = Callable[[set[str]], None]


class Rescanner:
    """Scans the roots, one scan at a time, then reports which paths changed."""

    def __init__(self, library: Library, roots: Sequence[str], options: ScanOptions,
                 on_change: OnChange, on_failure: Callable[[QueueemoError], None] | None = None) -> None:
        self.library = library
        self.roots = list(roots)
        self.options = options
        self.on_change = on_change
        self.on_failure = on_failure  # told of a failed rescan instead of logging it
        self._lock = threading.Lock()

    def __call__(self, paths: set[str] | None = None) -> None:
        """Rescan; ``paths`` are the files and folders that triggered it (default: the roots)."""
        from queueemo.library.scanner import scan

        with self._lock:
            try:
                summary = scan(self.library, self.roots, self.options)
            except QueueemoError as exc:
                if self.on_failure is None:
                    log.error("rescan failed: %s", exc)
                else:
                    self.on_failure(exc)
                return
        log.info("rescan: %s", summary.line())
        if paths or summary.analysed or summary.moved or summary.removed:  # else MPD has nothing new
            self.on_change(set(paths) if paths else set(self.roots))


class Watcher:
    """Watches folders recursively and calls ``on_burst(paths)`` after each quiet period."""

    def __init__(self, roots: Sequence[str], on_burst: OnChange, debounce_s: float) -> None:
        self.roots = list(roots)
        self.on_burst = on_burst
        self.debounce_s = debounce_s
        self._pending: set[str] = set()
        self._last_event = 0.0
        self._stopping = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="queueemo-watcher", daemon=True)
        self._observer = None

    def start(self) -> None:
        """Start observing (watchdog's thread) and debouncing (ours)."""
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                watcher._note(event)

        observer = Observer()
        for root in self.roots:
            observer.schedule(Handler(), root, recursive=True)
        observer.start()
        self._observer = observer
        self._thread.start()
        log.info("watching %s", ", ".join(self.roots))

    def stop(self) -> None:
        """Stop both threads; a burst being scanned is finished first."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()
        if self._thread.is_alive():
            self._thread.join()

    def _note(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write") or (
            event.is_directory and event.event_type == "modified"
        ):
            return
        paths = {os.fsdecode(event.src_path)}
        if getattr(event, "dest_path", ""):
            paths.add(os.fsdecode(event.dest_path))
        with self._changed:
            self._pending |= paths
            self._last_event = time.monotonic()
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopping:
                    if not self._pending:
                        self._changed.wait()
                        continue
                    quiet_in = self._last_event + self.debounce_s - time.monotonic()
                    if quiet_in <= 0:
                        break
                    self._changed.wait(quiet_in)
                if self._stopping:
                    return
                batch, self._pending = self._pending, set()
            log.info("%d paths changed; rescanning", len(batch))
            try:
                self.on_burst(batch)
            except Exception:  # the watcher must outlive one bad burst
                log.exception("handling changed files failed")
