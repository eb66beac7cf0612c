"""Stage 1 of a scan: walk music folders and stat every file with an audio extension.

Symlinks are followed; every directory is entered at most once, keyed by ``(st_dev, st_ino)``, which
stops symlink loops and keeps a folder linked twice from being indexed twice. Names are the ``str``
``os.scandir`` gives (undecodable bytes as surrogate escapes), so no name is ever lost or mangled.
Folders that cannot be listed and entries that cannot be stat'ed (no permission, a broken symlink)
are reported, so the scan keeps their tracks rather than taking them for deleted.
"""

from __future__ import annotations

import errno
import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from queueemo.audio import AUDIO_EXTENSIONS
from queueemo.errors import QueueemoError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Found:
    """A candidate audio file as seen on disk."""

    path: str  # absolute, symlinks kept as found
    root: str  # the scanned folder it was found under
    rel_path: str  # path relative to root
    size: int
    mtime_ns: int


def resolve_roots(roots: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Absolute forms of the folders (or files) to scan; ``QueueemoError`` if one does not exist.

    A missing root is an error rather than an empty folder: treating an unmounted disk as empty would
    remove its whole library from the index. So is an empty name (``scan "$UNSET"``), which would
    scan the current folder, and a file without an audio extension, which would scan nothing.
    """
    resolved = []
    for root in roots:
        if not os.fspath(root):
            raise QueueemoError("an empty path was given to scan (an unset shell variable, or \"\" "
                                "in [library] music_roots?)")
        path = os.path.abspath(os.fspath(root))
        if not os.path.exists(path):
            raise QueueemoError(f"{path} does not exist (is the disk mounted?)")
        if not os.path.isdir(path) and not _is_audio_name(path):
            raise QueueemoError(f"{path} is neither a folder nor an audio file: give a music folder")
        if path not in resolved:
            resolved.append(path)
    if not resolved:
        raise QueueemoError("nothing to scan: give a folder, or set [library] music_roots")
    return resolved


def _is_audio_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def _walk(root: str, seen: set[tuple[int, int]], unreadable: list[str]) -> Iterator[Found]:
    """Depth-first walk. Folders reached through a symlink wait until the real tree is done, so a
    folder that is both present and linked is indexed under its real path."""
    stack: list[tuple[str, str]] = [(root, "")]
    linked: deque[tuple[str, str, tuple[int, int]]] = deque()
    while stack or linked:
        if stack:
            folder, rel = stack.pop()
        else:
            folder, rel, key = linked.popleft()
            if key in seen:
                log.debug("skipping %r: folder already scanned (symlink loop or alias)", folder)
                continue
            seen.add(key)
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as exc:
            log.warning("cannot list %r: %s", folder, exc.strerror or exc)
            unreadable.append(folder)
            continue
        for entry in entries:
            rel_path = f"{rel}{entry.name}"
            try:
                info = entry.stat()  # follows symlinks
            except OSError as exc:
                unreadable.append(entry.path)
                # A dangling link to a cover image is noise; audio or a folder we may not enter is not.
                noise = exc.errno in (errno.ENOENT, errno.ELOOP) and not _is_audio_name(entry.name)
                log.log(logging.DEBUG if noise else logging.WARNING, "cannot read %r: %s", entry.path,
                        exc.strerror or exc)
                continue
            if entry.is_dir():
                key = (info.st_dev, info.st_ino)
                if entry.is_symlink():
                    linked.append((entry.path, rel_path + os.sep, key))
                elif key not in seen:
                    seen.add(key)
                    stack.append((entry.path, rel_path + os.sep))
            elif entry.is_file() and _is_audio_name(entry.name):
                yield Found(entry.path, root, rel_path, info.st_size, info.st_mtime_ns)


def discover(roots: Iterable[str], unreadable: list[str] | None = None) -> Iterator[Found]:
    """Every audio-named file under ``roots`` (absolute paths from ``resolve_roots``), once each.

    The folders and entries that could not be read are appended to ``unreadable``.
    """
    unreadable = [] if unreadable is None else unreadable
    seen: set[tuple[int, int]] = set()
    yielded: set[str] = set()
    for root in roots:
        info = os.stat(root)
        if not os.path.isdir(root):
            if _is_audio_name(root) and root not in yielded:
                yielded.add(root)
                parent = os.path.dirname(root)
                yield Found(root, parent, os.path.basename(root), info.st_size, info.st_mtime_ns)
            continue
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        for found in _walk(root, seen, unreadable):
            if found.path not in yielded:
                yielded.add(found.path)
                yield found
