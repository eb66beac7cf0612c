"""The MPD connection: connect, capability check, idle with a timeout, typed queue methods.

Every foreign error (socket, python-mpd2) is translated here into one ``PlayerError`` whose message
says what to do, so callers above never see ``mpd`` or ``OSError`` types. Reconnection policy lives
with the caller (the daemon); this module only offers ``connect()`` and ``close()``.

python-mpd2's blocking client cannot leave ``idle`` (it has no ``noidle`` since 3.0), so the player
drives python-mpd2's asyncio client on a private event loop: its public ``idle()`` iterator keeps a
subscription open and the client sends ``noidle`` by itself before each command. Callers stay
synchronous; each method runs the loop until its command has answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from queueemo.errors import AccessError, PlayerError

if TYPE_CHECKING:
    import mpd.asyncio

    from queueemo.config import MpdSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

# Commands queueemo sends; checked at connect so a restricted MPD fails early and clearly.
REQUIRED_COMMANDS = frozenset(
    {"add", "currentsong", "delete", "idle", "lsinfo", "playlistinfo", "status", "update"}
)
IDLE_SUBSYSTEMS = ("player", "playlist", "database", "options")  # options: single, repeat, random…


@dataclass(frozen=True)
class QueueEntry:
    """One song in MPD's queue."""

    pos: int
    song_id: int
    uri: str
    artist: str


@dataclass(frozen=True)
class QueueState:
    """A snapshot of MPD's queue and what is playing."""

    state: str  # "play", "pause" or "stop"
    current: int | None  # queue position of the current song
    entries: tuple[QueueEntry, ...]
    single: bool = False  # MPD stops (or repeats one song) after the current one
    repeat: bool = False
    random: bool = False
    consume: bool = False
    elapsed: float | None = None  # seconds played of the current song (None when stopped)

    @property
    def upcoming(self) -> int:
        """Songs queued after the current one (all of them when nothing is current)."""
        return len(self.entries) - (self.current + 1 if self.current is not None else 0)

    @property
    def current_entry(self) -> QueueEntry | None:
        """The song MPD is playing or paused on."""
        return self.entries[self.current] if self.current is not None else None

    @property
    def reference(self) -> QueueEntry | None:
        """The song the next pick must follow: the last queued one, else the current one."""
        if self.upcoming > 0:
            return self.entries[-1]
        return self.current_entry


def describe_address(settings: MpdSettings) -> str:
    """Where MPD is expected, as a user would write it."""
    host = settings.host or "localhost"
    return host if host.startswith(("/", "@")) else f"{host}:{settings.port}"


def uri_for(path: str, relpath: str, music_directory: str | None) -> str | None:
    """MPD URI of an indexed file: relative to MPD's music directory, else the root-relative path.

    ``None`` when the file lies outside MPD's music directory (MPD could not play it).
    """
    if not music_directory:
        return relpath.replace(os.sep, "/")
    root = os.path.normpath(music_directory)
    full = os.path.normpath(path)
    if full == root:
        return ""
    if full.startswith(root + os.sep):
        return os.path.relpath(full, root).replace(os.sep, "/")
    return None


def path_of(settings: MpdSettings, uri: str) -> str:
    """The file behind an MPD URI, or behind ``current`` (the song MPD plays or is paused on)."""
    with Player(settings) as player:
        if uri == "current":
            entry = player.queue().current_entry
            if entry is None:
                raise PlayerError(f"MPD at {player.address} is not playing anything")
            uri = entry.uri
        music_directory = player.music_directory()
    if not music_directory:
        raise PlayerError(f"MPD at {player.address} does not tell its music directory (over TCP it "
                          f"never does): set [mpd] music_directory to find {uri}")
    return os.path.join(music_directory, uri)


class Player:
    """A synchronous MPD client; not thread-safe (the daemon uses it from one thread only)."""

    def __init__(self, settings: MpdSettings) -> None:
        self.settings = settings
        self.address = describe_address(settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mpd.asyncio.MPDClient | None = None
        self._watch: asyncio.Task[None] | None = None
        self._changes: set[str] = set()
        self._changed: asyncio.Event | None = None
        self._known: dict[str, bool] = {}

    # -- connection -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a connection is open (it may still turn out broken on next use)."""
        return self._client is not None

    def connect(self) -> None:
        """Open the connection, send the password and check that MPD offers what we need."""
        import mpd
        import mpd.asyncio

        self.close()
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_quiet_about_lost_connections)
        client = mpd.asyncio.MPDClient()
        self._client = client
        with self._translate("connect to"):
            self._run(lambda: client.connect(self.settings.host or "localhost", self.settings.port))
        try:
            with self._translate("log in to"):
                if self.settings.password:
                    self._run(lambda: client.password(self.settings.password))
                missing = REQUIRED_COMMANDS - set(self._run(lambda: client.commands()))
        except PlayerError as exc:
            if not isinstance(exc.__cause__, mpd.CommandError):
                raise
            self.close()
            raise AccessError(
                f"MPD at {self.address} refused the password ({exc.__cause__}); "
                "fix [mpd] password or MPD_HOST=password@host"
            ) from exc.__cause__
        if missing:
            self.close()
            raise AccessError(
                f"MPD at {self.address} does not allow {', '.join(sorted(missing))}; "
                "check the password ([mpd] password or MPD_HOST=password@host)"
            )
        self._changes.clear()
        self._changed = asyncio.Event()
        self._watch = self._loop.create_task(self._watch_events(client))
        self._known.clear()
        log.info("connected to MPD %s at %s", client.mpd_version, self.address)

    async def _watch_events(self, client: mpd.asyncio.MPDClient) -> None:
        """Collect idle events for as long as the connection lives (runs whenever the loop runs)."""
        async for changed in client.idle(IDLE_SUBSYSTEMS):
            self._changes.update(changed)
            if self._changed is not None:
                self._changed.set()

    def close(self) -> None:
        """Drop the connection; safe to call at any time."""
        client, self._client = self._client, None
        loop, self._loop = self._loop, None
        watch, self._watch = self._watch, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.disconnect()
        if loop is not None:
            if watch is not None:
                watch.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*asyncio.all_tasks(loop),
                                                       return_exceptions=True))
            loop.close()

    def __enter__(self) -> Player:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, command: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """Run the loop until ``command()`` has answered, at most ``timeout`` (default: MPD's).

        ``command`` is called inside the running loop: python-mpd2 binds its futures to that loop.
        """
        if self._loop is None:
            raise PlayerError(f"not connected to MPD at {self.address}")
        limit = self.settings.timeout_s if timeout is None else timeout

        async def answer() -> T:
            return await command()

        return self._loop.run_until_complete(asyncio.wait_for(answer(), limit))

    @contextlib.contextmanager
    def _translate(self, doing: str) -> Iterator[None]:
        """Turn socket and python-mpd2 errors into ``PlayerError``; close broken connections."""
        import mpd

        try:
            yield
        except mpd.CommandError as exc:
            raise PlayerError(f"MPD at {self.address} refused to {doing}: {exc}") from exc
        except (mpd.MPDError, OSError) as exc:  # TimeoutError (from wait_for) is an OSError
            self.close()
            if isinstance(exc, TimeoutError):
                reason = f"no answer within {self.settings.timeout_s:g} s"
            else:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if not reason and isinstance(exc, mpd.ConnectionError):
                reason = "MPD closed the connection"
            # Where MPD is matters when we cannot reach it, not when a working connection drops.
            hint = " (is it running? set MPD_HOST/MPD_PORT or [mpd] host/port)" \
                if doing == "connect to" else ""
            raise PlayerError(
                f"cannot {doing} MPD at {self.address}: {reason or type(exc).__name__}{hint}"
            ) from exc

    @property
    def _mpd(self) -> mpd.asyncio.MPDClient:
        if self._client is None:
            raise PlayerError(f"not connected to MPD at {self.address}")
        return self._client

    # -- queries --------------------------------------------------------------------------------

    def music_directory(self) -> str | None:
        """MPD's music directory: from settings, else from MPD (which tells local sockets only)."""
        if self.settings.music_directory:
            return self.settings.music_directory
        import mpd

        try:
            with self._translate("ask the music directory of"):
                answer = self._run(lambda: self._mpd.config())
        except PlayerError as exc:
            if not isinstance(exc.__cause__, mpd.CommandError):
                raise
            log.info("MPD does not tell its music directory over TCP; using library-relative paths")
            return None
        return answer if isinstance(answer, str) else answer.get("music_directory")

    def queue(self) -> QueueState:
        """The queue and the playing position, consistent with each other.

        The asyncio client has no command lists: the status is read before and after the queue,
        and the reading is repeated if the queue changed in between.
        """
        with self._translate("read the queue of"):
            for _ in range(5):
                status, songs, after = self._run(lambda: self._read_queue())
                if status.get("playlist") == after.get("playlist"):
                    break
        entries = tuple(
            QueueEntry(
                pos=int(song["pos"]),
                song_id=int(song["id"]),
                uri=song["file"],
                artist=_first(song.get("artist", "")),
            )
            for song in songs
        )
        current = int(status["song"]) if "song" in status else None
        return QueueState(
            state=status.get("state", "stop"), current=current, entries=entries,
            single=status.get("single", "0") != "0", repeat=status.get("repeat", "0") != "0",
            random=status.get("random", "0") != "0", consume=status.get("consume", "0") != "0",
            elapsed=float(status["elapsed"]) if "elapsed" in status else None,
        )

    async def _read_queue(self) -> tuple[dict, list[dict], dict]:
        client = self._mpd
        # Sent back to back; awaited in order (playlistinfo's result is fed only once awaited).
        status, songs, after = client.status(), client.playlistinfo(), client.status()
        try:
            return await status, list(await songs), await after
        finally:
            for result in (status, after):  # after a broken connection: errors seen, not leaked
                if result.done() and not result.cancelled():
                    result.exception()

    def knows(self, uri: str, *, quiet: bool = False) -> bool:
        """Whether MPD's database holds ``uri`` (cached until the database changes). A track it does not
        know is logged as skipped (once per database state) unless ``quiet``: the caller explains it."""
        import mpd

        if uri not in self._known:
            try:
                with self._translate("look up a song in"):
                    self._known[uri] = bool(self._run(lambda: self._mpd.lsinfo(uri)))
            except PlayerError as exc:
                if not isinstance(exc.__cause__, mpd.CommandError):
                    raise
                if not quiet:
                    log.warning("MPD does not know %s (run `mpc update`?); skipped", uri)
                self._known[uri] = False
        return self._known[uri]

    def database_changed(self) -> None:
        """Forget cached lookups after MPD's database was updated."""
        self._known.clear()

    # -- changes --------------------------------------------------------------------------------

    def add(self, uri: str) -> int:
        """Append one song to the queue; its queue song id."""
        with self._translate(f"add {uri} to the queue of"):
            return int(self._run(lambda: self._mpd.addid(uri)))

    def delete(self, start: int, end: int) -> None:
        """Remove queue positions ``start`` ≤ pos < ``end``."""
        with self._translate("crop the queue of"):
            self._run(lambda: self._mpd.delete((start, end)))

    def update(self, uri: str = "") -> None:
        """Ask MPD to rescan ``uri`` (a file or folder; empty: everything)."""
        with self._translate("start a database update in"):
            self._run(lambda: self._mpd.update(uri) if uri else self._mpd.update())

    def play(self, song_id: int) -> None:
        """Play the queued song ``song_id``."""
        with self._translate("start playback in"):
            self._run(lambda: self._mpd.playid(song_id))

    # -- waiting --------------------------------------------------------------------------------

    def idle(self, timeout: float, wake_fd: int | None = None) -> set[str]:
        """Wait for player/playlist/database events, at most ``timeout`` s or until ``wake_fd``.

        Events that happened since the last call are returned at once.
        """
        with self._translate("wait for events from"):
            self._run(lambda: self._wait(timeout, wake_fd), timeout=timeout + self.settings.timeout_s)
        changes, self._changes = self._changes, set()
        return changes

    async def _wait(self, timeout: float, wake_fd: int | None) -> None:
        loop, watch, changed = self._loop, self._watch, self._changed
        assert loop is not None and watch is not None and changed is not None
        if self._changes:
            return
        changed.clear()
        if wake_fd is not None:
            loop.add_reader(wake_fd, changed.set)
        try:
            waiter = asyncio.ensure_future(changed.wait())
            await asyncio.wait({waiter, watch}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        finally:
            if wake_fd is not None:
                loop.remove_reader(wake_fd)
        if watch.done():  # the connection broke: its error says why
            watch.result()
            raise OSError("MPD closed the connection")


def _quiet_about_lost_connections(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """python-mpd2's own idle callback also meets a dropped connection, after ``idle()`` has told us
    (one "lost MPD" line): keep its traceback out of the log; anything else gets asyncio's report."""
    import mpd

    if isinstance(context.get("exception"), (mpd.ConnectionError, OSError)):
        log.debug("MPD connection: %s", context["exception"])
        return
    loop.default_exception_handler(context)


def _first(value: str | list[str]) -> str:
    """python-mpd2 returns a list when a tag occurs more than once."""
    return value[0] if isinstance(value, list) else value

