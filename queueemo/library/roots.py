"""Library roots by name: one index shared by machines that mount the same music in different places.

``[library] root_names = ["nas=/mnt/nas/music"]`` names a mount point. A track under a named root
is stored as ``nas:/rel/path`` instead of its absolute path, so another machine with
``root_names = ["nas=/srv/music"]`` finds the same row (and its analysis) for ``/srv/music/rel/path``.
Paths outside every named root are stored absolute, as before. ``FsPath`` applies the mapping of the
open ``Library`` on the way in and out, so the rest of the library only ever sees local paths; a
track under a root this machine does not map comes back in its stored form (``nas:/…``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from queueemo.errors import QueueemoError

if TYPE_CHECKING:
    from queueemo.library.db import Library

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Roots:
    """Named mount points, ``(name, absolute folder)``, the deepest folder first."""

    mounts: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Roots:
        """Roots from ``"name=/folder"`` entries; ``QueueemoError`` naming a malformed one."""
        mounts: dict[str, str] = {}
        for entry in entries:
            name, sep, folder = entry.partition("=")
            name = name.strip()
            if not sep or not _NAME.fullmatch(name) or not folder.strip():
                raise QueueemoError(f"[library] root_names: {entry!r} is not NAME=/folder "
                                    "(NAME of letters, digits, '_', '.', '-')")
            if name in mounts:
                raise QueueemoError(f"[library] root_names: {name!r} is named twice")
            mounts[name] = os.path.abspath(os.path.expanduser(folder.strip()))
        return cls(tuple(sorted(mounts.items(), key=lambda item: -len(item[1]))))

    def stored(self, path: str) -> str:
        """The form ``path`` is stored in: ``name:/rel`` under a named root, else unchanged."""
        for name, folder in self.mounts:
            if path == folder:
                return f"{name}:"
            if path.startswith(folder) and path[len(folder)] == "/":
                return f"{name}:{path[len(folder):]}"
        return path

    def local(self, stored: str) -> str:
        """The local path of a stored one (a root this machine does not map stays as stored)."""
        if stored.startswith("/"):
            return stored
        name, sep, rest = stored.partition(":")
        folder = dict(self.mounts).get(name) if sep else None
        return stored if folder is None else folder + rest

    def name_of(self, path: str) -> str | None:
        """The root name ``path`` lies under, if any."""
        stored = self.stored(path)
        return None if stored.startswith("/") else stored.partition(":")[0]


def adopt_named_roots(library: Library) -> int:
    """Rename tracks stored by absolute path inside a named root to ``name:/rel``; how many.

    Run when the index is opened, so naming a root later keeps its analyses. A track already stored
    under the name (by another machine) wins over its absolute twin, which is dropped.
    """
    import sqlalchemy as sa

    table = sa.table("tracks", sa.column("id"), sa.column("path"), sa.column("root"))
    renamed = 0
    with library.session() as session:
        connection = session.connection()
        for name, folder in library.roots.mounts:
            prefix = os.fsencode(folder) + b"/"
            named = os.fsencode(name) + b":"
            rows = connection.execute(sa.select(table.c.id, table.c.path, table.c.root).where(
                table.c.path >= prefix, table.c.path < prefix[:-1] + b"0")).all()
            for track_id, path, root in rows:
                path, root = bytes(path), bytes(root)
                new_path = named + path[len(prefix) - 1:]
                new_root = named + root[len(prefix) - 1:] if (root + b"/").startswith(prefix) else root
                if connection.execute(sa.select(table.c.id).where(table.c.path == new_path)).first():
                    connection.execute(sa.delete(table).where(table.c.id == track_id))
                else:
                    connection.execute(sa.update(table).where(table.c.id == track_id)
                                       .values(path=new_path, root=new_root))
                renamed += 1
    if renamed:
        log.info("%d tracks now stored by root name", renamed)
    return renamed
