"""The analysed tracks as compact columns: what the picker holds in memory, a million tracks at once.

As Python strings and tuples a million tracks cost ~800 MB; here a row costs about a hundred bytes
plus its path: numbers in numpy arrays (float32, int32 codes, int64 ids), paths and URIs as slices of
one bytes blob (a URI is usually the tail of its path, so it costs no bytes of its own), artist and
genre names as int32 codes into one shared name table, and the album and recording keys as 64-bit
hashes (the rules only ask whether two of them are equal).

A table never changes: ``updated()`` returns a new one with some tracks replaced or removed, so a
picker still holding the old table is never disturbed. Rows are kept in track-id order, so a table
updated change by change equals one loaded in full.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import overload

import numpy as np

# Columns of ``CandidateTable.acoustics``, in order (seconds, LUFS, Hz; NaN where unknown).
ACOUSTIC_COLUMNS = ("duration_s", "ending_start_s", "opening_lufs", "ending_lufs", "opening_brightness",
                    "ending_brightness")
NO_KEY = -1  # album / recording key of a track without one (keys are hashes made non-negative)
_POSITIVE = (1 << 63) - 1

_BRACKETED = re.compile(r"[(\[{].*?[)\]}]")
_PUNCTUATION = re.compile(r"[^\w\s]")


@lru_cache(maxsize=65_536)
def normalise(text: str) -> str:
    """Casefolded text without bracketed remarks or punctuation: "Song (Remastered)" → "song"."""
    return " ".join(_PUNCTUATION.sub(" ", _BRACKETED.sub(" ", text.casefold())).split())


def album_key(album: str) -> int:
    """The hash the album-spacing rule compares (``NO_KEY`` without an album)."""
    return hash(album.casefold()) & _POSITIVE if album else NO_KEY


def recording_key(artist: str, title: str) -> int:
    """The hash the duplicate-recording rule compares: normalised artist and title (``NO_KEY``: no title)."""
    name = normalise(title) if title else ""
    return hash(f"{normalise(artist)}\0{name}") & _POSITIVE if name else NO_KEY


class Strings(Sequence[str | None]):
    """Texts as slices of one bytes blob (file-system bytes, decoded as ``os.fsdecode`` does).

    A negative length is ``None``. ``in`` and ``index`` search the blob, not a million strings.
    """

    __slots__ = ("blob", "lengths", "starts")

    def __init__(self, blob: bytes, starts: np.ndarray, lengths: np.ndarray) -> None:
        self.blob, self.starts, self.lengths = blob, starts, lengths

    def __len__(self) -> int:
        return len(self.starts)

    @overload
    def __getitem__(self, row: int) -> str | None: ...
    @overload
    def __getitem__(self, row: slice) -> list[str | None]: ...

    def __getitem__(self, row: int | slice) -> str | list[str | None] | None:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        length = int(self.lengths[row])
        if length < 0:
            return None
        start = int(self.starts[row])
        return os.fsdecode(self.blob[start:start + length])

    def __iter__(self) -> Iterator[str | None]:
        blob = self.blob
        for start, length in zip(self.starts.tolist(), self.lengths.tolist(), strict=True):
            yield None if length < 0 else os.fsdecode(blob[start:start + length])

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and self.find(text) is not None

    def index(self, text: object, start: int = 0, stop: int | None = None) -> int:
        """The first row holding ``text``; ``ValueError`` when none does."""
        row = self.find(text) if isinstance(text, str) and start == 0 and stop is None else None
        if row is None:
            raise ValueError(f"{text!r} is not in the candidates")
        return row

    def find(self, text: str) -> int | None:
        """The first row holding exactly ``text``, or ``None``."""
        wanted = os.fsencode(text)
        position = self.blob.find(wanted)
        while position >= 0:
            rows = np.flatnonzero((self.starts == position) & (self.lengths == len(wanted)))
            if len(rows):
                return int(rows[0])
            position = self.blob.find(wanted, position + 1)
        return None


class Names(Sequence[str]):
    """A column of names as int32 codes into a shared name table."""

    __slots__ = ("codes", "table")

    def __init__(self, table: list[str], codes: np.ndarray) -> None:
        self.table, self.codes = table, codes

    def __len__(self) -> int:
        return len(self.codes)

    @overload
    def __getitem__(self, row: int) -> str: ...
    @overload
    def __getitem__(self, row: slice) -> list[str]: ...

    def __getitem__(self, row: int | slice) -> str | list[str]:
        if isinstance(row, slice):
            return [self.table[c] for c in self.codes[row].tolist()]
        return self.table[int(self.codes[row])]

    def __iter__(self) -> Iterator[str]:
        table = self.table
        return (table[c] for c in self.codes.tolist())


class UriIndex(Mapping[str, int]):
    """URI → row, by binary search over the rows' sorted URI hashes (no dict of a million strings)."""

    __slots__ = ("hashes", "rows", "uris")

    def __init__(self, uris: Strings, hashes: np.ndarray) -> None:
        known = np.flatnonzero(uris.lengths >= 0)
        order = np.argsort(hashes[known], kind="stable")
        self.uris, self.rows, self.hashes = uris, known[order].astype(np.int32), hashes[known][order]

    def get(self, uri: object, default: int | None = None) -> int | None:  # type: ignore[override]
        if not isinstance(uri, str):
            return default
        wanted = hash(uri)
        at = int(np.searchsorted(self.hashes, wanted))
        while at < len(self.hashes) and self.hashes[at] == wanted:
            row = int(self.rows[at])
            if self.uris[row] == uri:
                return row
            at += 1
        return default

    def __getitem__(self, uri: str) -> int:
        row = self.get(uri)
        if row is None:
            raise KeyError(uri)
        return row

    def __contains__(self, uri: object) -> bool:
        return self.get(uri) is not None

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[str]:
        return (self.uris[int(row)] for row in np.sort(self.rows))  # type: ignore[misc]


@dataclass
class Vocabulary:
    """Names shared by the successive tables of one loader; it only grows (a few MB at most).

    ``names``: artist and genre texts as shown; ``keys``: casefolded artist → the code the
    artist-spacing rule compares.
    """

    names: list[str] = field(default_factory=lambda: [""])
    codes: dict[str, int] = field(default_factory=lambda: {"": 0})
    keys: dict[str, int] = field(default_factory=dict)
    key_of_name: list[int] = field(default_factory=lambda: [-1])

    def code(self, name: str) -> int:
        """The code of ``name`` in ``names`` (added when new)."""
        code = self.codes.get(name)
        if code is None:
            code = self.codes[name] = len(self.names)
            self.names.append(name)
            folded = name.casefold()
            self.key_of_name.append(self.keys.setdefault(folded, len(self.keys)) if folded else -1)
        return code


@dataclass(frozen=True)
class CandidateTable:
    """Analysed tracks as compact parallel columns, one row per track, in ``ids`` order."""

    ids: np.ndarray  # int64 track ids, ascending
    blob: bytes  # the bytes of every path and of URIs that are not a path's tail
    path_starts: np.ndarray  # int64 offsets into ``blob``
    path_lengths: np.ndarray  # int32
    uri_starts: np.ndarray  # int64
    uri_lengths: np.ndarray  # int32; -1: MPD cannot reach the file
    uri_hash: np.ndarray  # int64 hash() of each URI (``NO_KEY`` without one), for ``UriIndex``
    artist: np.ndarray  # int32 codes into ``vocabulary.names``
    genre: np.ndarray  # int32 codes into ``vocabulary.names``
    album: np.ndarray  # int64 ``album_key`` hashes
    recording: np.ndarray  # int64 ``recording_key`` hashes
    opening: np.ndarray  # (n, 2) float32 opening (arousal, valence)
    acoustics: np.ndarray  # (n, 6) float32, ``ACOUSTIC_COLUMNS``
    vocabulary: Vocabulary

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def paths(self) -> Strings:
        return Strings(self.blob, self.path_starts, self.path_lengths)

    @property
    def uris(self) -> Strings:
        return Strings(self.blob, self.uri_starts, self.uri_lengths)

    @property
    def artists(self) -> Names:
        return Names(self.vocabulary.names, self.artist)

    @property
    def genres(self) -> Names:
        return Names(self.vocabulary.names, self.genre)

    @property
    def artist_keys(self) -> np.ndarray:
        """int32 code of each row's casefolded artist (-1: no artist)."""
        return np.asarray(self.vocabulary.key_of_name, dtype=np.int32)[self.artist]

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns and the blob (the shared vocabulary aside)."""
        arrays = (self.ids, self.path_starts, self.path_lengths, self.uri_starts, self.uri_lengths,
                  self.uri_hash, self.artist, self.genre, self.album, self.recording, self.opening,
                  self.acoustics)
        return len(self.blob) + sum(a.nbytes for a in arrays)

    def updated(self, removed: Iterable[int], added: CandidateTable) -> CandidateTable:
        """A new table without the tracks ``removed`` and with ``added`` (replacing same-id rows)."""
        gone = np.union1d(np.fromiter(removed, dtype=np.int64), added.ids)
        keep = np.flatnonzero(~np.isin(self.ids, gone, assume_unique=False))
        shift = len(self.blob)
        ids = np.concatenate([self.ids[keep], added.ids])
        order = np.argsort(ids, kind="stable")

        def joined(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
            return np.concatenate([mine[keep], theirs])[order]

        table = CandidateTable(
            ids=ids[order], blob=self.blob + added.blob,
            path_starts=joined(self.path_starts, added.path_starts + shift),
            path_lengths=joined(self.path_lengths, added.path_lengths),
            uri_starts=joined(self.uri_starts, added.uri_starts + shift),
            uri_lengths=joined(self.uri_lengths, added.uri_lengths),
            uri_hash=joined(self.uri_hash, added.uri_hash),
            artist=joined(self.artist, added.artist), genre=joined(self.genre, added.genre),
            album=joined(self.album, added.album), recording=joined(self.recording, added.recording),
            opening=joined(self.opening, added.opening), acoustics=joined(self.acoustics, added.acoustics),
            vocabulary=self.vocabulary,
        )
        return table.compacted() if table.garbage() > len(table.blob) // 2 else table

    def garbage(self) -> int:
        """Bytes of the blob no row points at any more (left by removed or replaced rows)."""
        own = (self.uri_lengths > 0) & ((self.uri_starts < self.path_starts)
                                        | (self.uri_starts >= self.path_starts + self.path_lengths))
        used = int(self.path_lengths.sum()) + int(self.uri_lengths[own].sum())
        return max(0, len(self.blob) - used)

    def compacted(self) -> CandidateTable:
        """The same rows with a blob holding only their own bytes."""
        builder = TableBuilder(self.vocabulary)
        paths = [os.fsencode(p) for p in self.paths]  # type: ignore[arg-type]
        uris = [None if u is None else os.fsencode(u) for u in self.uris]
        blob, path_starts, path_lengths, uri_starts, uri_lengths = builder.strings(paths, uris)
        return replace(self, blob=blob, path_starts=path_starts, path_lengths=path_lengths,
                       uri_starts=uri_starts, uri_lengths=uri_lengths)


class TableBuilder:
    """Builds a ``CandidateTable`` from chunks of rows (a streamed query adds one chunk at a time)."""

    def __init__(self, vocabulary: Vocabulary | None = None) -> None:
        self.vocabulary = vocabulary or Vocabulary()
        self._chunks: list[CandidateTable] = []

    def strings(self, paths: Sequence[bytes], uris: Sequence[bytes | None],
                ) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One blob with ``paths`` (and the ``uris`` that are not their tails); starts and lengths."""
        parts: list[bytes] = []
        n = len(paths)
        path_starts, uri_starts = np.zeros(n, np.int64), np.zeros(n, np.int64)
        path_lengths, uri_lengths = np.zeros(n, np.int32), np.full(n, -1, np.int32)
        offset = 0
        for row, (path, uri) in enumerate(zip(paths, uris, strict=True)):
            parts.append(path)
            path_starts[row], path_lengths[row] = offset, len(path)
            offset += len(path)
            if uri is None:
                continue
            uri_lengths[row] = len(uri)
            if path.endswith(uri):
                uri_starts[row] = offset - len(uri)
            else:
                parts.append(uri)
                uri_starts[row] = offset
                offset += len(uri)
        return b"".join(parts), path_starts, path_lengths, uri_starts, uri_lengths

    def add(self, *, ids: Sequence[int], paths: Sequence[bytes], uris: Sequence[bytes | None],
            artists: Sequence[str], genres: Sequence[str], albums: Sequence[str], titles: Sequence[str],
            opening: np.ndarray, acoustics: np.ndarray) -> None:
        """One chunk of rows; ``albums`` are album keys ("": none), ``acoustics`` as ``ACOUSTIC_COLUMNS``."""
        blob, path_starts, path_lengths, uri_starts, uri_lengths = self.strings(paths, uris)
        code = self.vocabulary.code
        self._chunks.append(CandidateTable(
            ids=np.asarray(ids, dtype=np.int64), blob=blob, path_starts=path_starts,
            path_lengths=path_lengths, uri_starts=uri_starts, uri_lengths=uri_lengths,
            uri_hash=np.fromiter((NO_KEY if u is None else hash(os.fsdecode(u)) for u in uris), np.int64,
                                 len(uris)),
            artist=np.fromiter(map(code, artists), np.int32, len(artists)),
            genre=np.fromiter(map(code, genres), np.int32, len(genres)),
            album=np.fromiter(map(album_key, albums), np.int64, len(albums)),
            recording=np.fromiter(map(recording_key, artists, titles), np.int64, len(titles)),
            opening=np.asarray(opening, dtype=np.float32).reshape(-1, 2),
            acoustics=np.asarray(acoustics, dtype=np.float32).reshape(-1, len(ACOUSTIC_COLUMNS)),
            vocabulary=self.vocabulary,
        ))

    def build(self) -> CandidateTable:
        """The table of every chunk added, in id order."""
        table = _empty(self.vocabulary)
        if not self._chunks:
            return table
        chunks, self._chunks = self._chunks, []
        shifts = np.cumsum([0, *(len(c.blob) for c in chunks[:-1])])

        def column(name: str, shifted: bool = False) -> np.ndarray:
            return np.concatenate([getattr(c, name) + (s if shifted else 0)
                                   for c, s in zip(chunks, shifts, strict=True)])

        ids = column("ids")
        order = np.argsort(ids, kind="stable") if np.any(np.diff(ids) <= 0) else slice(None)
        return CandidateTable(
            ids=ids[order], blob=b"".join(c.blob for c in chunks),
            path_starts=column("path_starts", True)[order], path_lengths=column("path_lengths")[order],
            uri_starts=column("uri_starts", True)[order], uri_lengths=column("uri_lengths")[order],
            uri_hash=column("uri_hash")[order],
            artist=column("artist")[order], genre=column("genre")[order], album=column("album")[order],
            recording=column("recording")[order], opening=column("opening")[order],
            acoustics=column("acoustics")[order], vocabulary=self.vocabulary,
        )


def _empty(vocabulary: Vocabulary) -> CandidateTable:
    return CandidateTable(
        ids=np.zeros(0, np.int64), blob=b"", path_starts=np.zeros(0, np.int64),
        path_lengths=np.zeros(0, np.int32), uri_starts=np.zeros(0, np.int64),
        uri_lengths=np.zeros(0, np.int32), uri_hash=np.zeros(0, np.int64), artist=np.zeros(0, np.int32),
        genre=np.zeros(0, np.int32),
        album=np.zeros(0, np.int64), recording=np.zeros(0, np.int64), opening=np.zeros((0, 2), np.float32),
        acoustics=np.zeros((0, len(ACOUSTIC_COLUMNS)), np.float32), vocabulary=vocabulary,
    )
