"""The MPD connection: connect, capability check, idle with a timeout, typed queue methods.

Every foreign error (socket, python-mpd2) is translated here into one ``PlayerError`` whose message
says what to do, so callers above never see ``mpd`` or ``OSError`` types. Reconnection policy lives
with the caller (the daemon); this module only offers ``connect()`` and ``close()``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from queueemo.errors import AccessError, PlayerError

if TYPE_CHECKING:
    import mpd

    from queueemo.config import MpdSettings

log = logging.getLogger(__name__)

# Commands queueemo sends; checked at connect so a restricted MPD fails early and clearly.
REQUIRED_COMMANDS = frozenset(
    {"add", "currentsong", "delete", "idle", "lsinfo", "playlistinfo", "status", "update"}
)
IDLE_SUBSYSTEMS = ("player", "playlist", "database")


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


class Player:
    """A synchronous MPD client; not thread-safe (the daemon uses it from one thread only)."""

    def __init__(self, settings: MpdSettings) -> None:
        self.settings = settings
        self.address = describe_address(settings)
        self._client: mpd.MPDClient | None = None
        self._known: dict[str, bool] = {}

    # -- connection -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a connection is open (it may still turn out broken on next use)."""
        return self._client is not None

    def connect(self) -> None:
        """Open the connection, send the password and check that MPD offers what we need."""
        import mpd

        self.close()
        client = mpd.MPDClient()
        client.timeout = self.settings.timeout_s
        self._client = client
        with self._translate("connect to"):
            client.connect(self.settings.host or "localhost", self.settings.port)
        try:
            with self._translate("log in to"):
                if self.settings.password:
                    client.password(self.settings.password)
                missing = REQUIRED_COMMANDS - set(client.commands())
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
        self._known.clear()
        log.info("connected to MPD %s at %s", client.mpd_version, self.address)

    def close(self) -> None:
        """Drop the connection; safe to call at any time."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.disconnect()

    def __enter__(self) -> Player:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _translate(self, doing: str) -> Iterator[None]:
        """Turn socket and python-mpd2 errors into ``PlayerError``; close broken connections."""
        import mpd

        try:
            yield
        except mpd.CommandError as exc:
            raise PlayerError(f"MPD at {self.address} refused to {doing}: {exc}") from exc
        except (mpd.MPDError, OSError) as exc:
            self.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise PlayerError(
                f"cannot {doing} MPD at {self.address}: {reason or type(exc).__name__} "
                "(is it running? set MPD_HOST/MPD_PORT or [mpd] host/port)"
            ) from exc

    @property
    def _mpd(self) -> mpd.MPDClient:
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
                answer = self._mpd.config()
        except PlayerError as exc:
            if not isinstance(exc.__cause__, mpd.CommandError):
                raise
            log.info("MPD does not tell its music directory over TCP; using library-relative paths")
            return None
        return answer if isinstance(answer, str) else answer.get("music_directory")

    def queue(self) -> QueueState:
        """The queue and the playing position, read in one round trip."""
        with self._translate("read the queue of"):
            client = self._mpd
            client.command_list_ok_begin()
            client.status()
            client.playlistinfo()
            status, songs = client.command_list_end()
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
        )

    def knows(self, uri: str) -> bool:
        """Whether MPD's database holds ``uri`` (cached until the database changes)."""
        import mpd

        if uri not in self._known:
            try:
                with self._translate("look up a song in"):
                    self._known[uri] = bool(self._mpd.lsinfo(uri))
            except PlayerError as exc:
                if not isinstance(exc.__cause__, mpd.CommandError):
                    raise
                log.warning("MPD does not know %s (run `mpc update`?); skipped", uri)
                self._known[uri] = False
        return self._known[uri]

    def database_changed(self) -> None:
        """Forget cached lookups after MPD's database was updated."""
        self._known.clear()

    # -- changes --------------------------------------------------------------------------------

    def add(self, uri: str) -> None:
        """Append one song to the queue."""
        with self._translate(f"add {uri} to the queue of"):
            self._mpd.add(uri)

    def delete(self, start: int, end: int) -> None:
        """Remove queue positions ``start`` ≤ pos < ``end``."""
        with self._translate("crop the queue of"):
            self._mpd.delete((start, end))

    def update(self, uri: str = "") -> None:
        """Ask MPD to rescan ``uri`` (a file or folder; empty: everything)."""
        with self._translate("start a database update in"):
            if uri:
                self._mpd.update(uri)
            else:
                self._mpd.update()

    def play(self) -> None:
        """Start playback."""
        with self._translate("start playback in"):
            self._mpd.play()

    # -- waiting --------------------------------------------------------------------------------

    def idle(self, timeout: float, wake_fd: int | None = None) -> set[str]:
        """Wait for player/playlist/database events, at most ``timeout`` s or until ``wake_fd``.

        python-mpd2's blocking client has no ``noidle``; the exchange is short enough to speak
        directly: send ``idle``, wait on the socket, and cancel with ``noidle`` when nothing came.
        """
        client = self._mpd
        watched = [client.fileno()] + ([wake_fd] if wake_fd is not None else [])
        with self._translate("wait for events from"):
            client._write_command("idle", IDLE_SUBSYSTEMS)
            readable, _, _ = select.select(watched, [], [], timeout)
            if client.fileno() not in readable:
                client._write_command("noidle")
            lines = list(client._read_lines())
        return {line.partition(": ")[2] for line in lines if line.startswith("changed: ")}


def _first(value: str | list[str]) -> str:
    """python-mpd2 returns a list when a tag occurs more than once."""
    return value[0] if isinstance(value, list) else value

