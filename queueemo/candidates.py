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
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import overload

import numpy as np

# Columns of ``CandidateTable.acoustics``, in order (seconds, LUFS, Hz, onsets/s; NaN where unknown).
ACOUSTIC_COLUMNS = ("duration_s", "ending_start_s", "opening_lufs", "ending_lufs", "opening_brightness",
                    "ending_brightness", "opening_onsets", "ending_onsets")
MIN_BRIGHTNESS_HZ = 20.0  # floor before taking log2 of a spectral centroid
MIN_ONSETS = 0.25  # onsets per second: floor before taking log2 of an onset density (no onsets in 10 s)
NO_KEY = -1  # album / recording key of a track without one (keys are hashes made non-negative)
_POSITIVE = (1 << 63) - 1

_FS_CODEC = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())
_BRACKETED = re.compile(r"[(\[{].*?[)\]}]")
_PUNCTUATION = re.compile(r"[^\w\s]")


@lru_cache(maxsize=65_536)
def normalise(text: str) -> str:
    """Casefolded text without bracketed remarks or punctuation: "Song (Remastered)" → "song"."""
    return _normalised(text)


def _normalised(text: str) -> str:
    """``normalise`` without its cache: titles are mostly distinct, and a churning cache of a
    million of them would scatter small objects over the heap the daemon keeps."""
    folded = text.casefold()
    if folded.replace(" ", "").isalnum():  # nothing for the patterns to remove (\w is isalnum or _)
        return " ".join(folded.split())
    return " ".join(_PUNCTUATION.sub(" ", _BRACKETED.sub(" ", folded)).split())


def album_key(album: str) -> int:
    """The hash the album-spacing rule compares (``NO_KEY`` without an album)."""
    return hash(album.casefold()) & _POSITIVE if album else NO_KEY


def recording_key(artist: str, title: str) -> int:
    """The hash the duplicate-recording rule compares: normalised artist and title (``NO_KEY``: no title)."""
    name = _normalised(title) if title else ""
    return hash(f"{normalise(artist)}\0{name}") & _POSITIVE if name else NO_KEY


def _decode(raw: bytes) -> str:
    """File-system bytes as ``str``, as ``os.fsdecode`` gives them (without its checks)."""
    return raw.decode(*_FS_CODEC)


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
        return _decode(self.blob[start:start + length])

    def __iter__(self) -> Iterator[str | None]:
        blob = self.blob
        for start, length in zip(self.starts.tolist(), self.lengths.tolist(), strict=True):
            yield None if length < 0 else _decode(blob[start:start + length])

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
        wanted = hash(os.fsencode(uri))
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

    def codes_of(self, names: Sequence[str]) -> np.ndarray:
        """int32 codes of ``names`` (new ones added)."""
        get = self.codes.get
        found = [get(name) for name in names]
        if None in found:
            found = [self.code(name) if code is None else code
                     for code, name in zip(found, names, strict=True)]
        return np.array(found, dtype=np.int32).reshape(len(names))

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
    """Analysed tracks as compact parallel columns, one row per track, in ``ids`` order.

    Integer columns take the smallest type their values fit: int32 ids, uint32 blob offsets (int64 only
    past 4 GiB of paths).
    """

    ids: np.ndarray  # track ids, ascending
    blob: bytes  # the bytes of every path and of URIs that are not a path's tail
    path_starts: np.ndarray  # offsets into ``blob``
    path_lengths: np.ndarray  # int32
    uri_starts: np.ndarray
    uri_lengths: np.ndarray  # int32; -1: MPD cannot reach the file
    uri_hash: np.ndarray  # int64 hash() of each URI's bytes (``NO_KEY`` without one), for ``UriIndex``
    artist: np.ndarray  # int32 codes into ``vocabulary.names``
    genre: np.ndarray  # int32 codes into ``vocabulary.names``
    album: np.ndarray  # int64 ``album_key`` hashes
    recording: np.ndarray  # int64 ``recording_key`` hashes
    opening: np.ndarray  # (n, 2) float32 opening (arousal, valence)
    # (8, n) float32, one row per ``ACOUSTIC_COLUMNS``, NaN where unknown; the brightness and onset
    # rows hold log2 of the Hz and of the onsets per second (floored at ``MIN_BRIGHTNESS_HZ``,
    # ``MIN_ONSETS``), the scale the picker compares them on.
    acoustics: np.ndarray
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
        return len(self.blob) + sum(getattr(self, name).nbytes for name in (*_ROW_COLUMNS, "acoustics"))

    def updated(self, removed: Iterable[int], added: CandidateTable) -> CandidateTable:
        """A new table without the tracks ``removed`` and with ``added`` (replacing same-id rows)."""
        gone = np.union1d(np.fromiter(removed, dtype=np.int64), added.ids)
        keep = np.flatnonzero(~np.isin(self.ids, gone))
        ids = np.concatenate([self.ids[keep], added.ids])
        order = np.argsort(ids, kind="stable")
        shift = len(self.blob)
        columns = {}
        for name in _ROW_COLUMNS:
            mine, theirs = getattr(self, name)[keep], getattr(added, name)
            if name in _OFFSETS:
                mine, theirs = mine.astype(np.int64), theirs.astype(np.int64) + shift
            columns[name] = np.concatenate([mine, theirs])[order]
        for name in _OFFSETS:
            columns[name] = _offsets(columns[name])
        acoustics = np.concatenate([self.acoustics[:, keep], added.acoustics], axis=1)[:, order]
        table = CandidateTable(**columns, blob=self.blob + added.blob, acoustics=acoustics,
                               vocabulary=self.vocabulary)
        return table.compacted() if table.garbage() > len(table.blob) // 2 else table

    def garbage(self) -> int:
        """Bytes of the blob no row points at any more (left by removed or replaced rows)."""
        path_starts, uri_starts = self.path_starts.astype(np.int64), self.uri_starts.astype(np.int64)
        own = (self.uri_lengths > 0) & ((uri_starts < path_starts)
                                        | (uri_starts >= path_starts + self.path_lengths))
        used = int(self.path_lengths.sum(dtype=np.int64)) + int(self.uri_lengths[own].sum(dtype=np.int64))
        return max(0, len(self.blob) - used)

    def compacted(self) -> CandidateTable:
        """The same rows with a blob holding only their own bytes."""
        encode = os.fsencode
        paths = [encode(p) for p in self.paths]  # type: ignore[arg-type]
        uris = [None if u is None else encode(u) for u in self.uris]
        blob, path_starts, path_lengths, uri_starts, uri_lengths = strings(paths, uris)
        return replace(self, blob=blob, path_starts=path_starts, path_lengths=path_lengths,
                       uri_starts=uri_starts, uri_lengths=uri_lengths)


_ROW_COLUMNS = ("ids", "path_starts", "path_lengths", "uri_starts", "uri_lengths", "uri_hash", "artist",
                "genre", "album", "recording", "opening")
_OFFSETS = ("path_starts", "uri_starts")


def _offsets(values: np.ndarray) -> np.ndarray:
    """Blob offsets as uint32 while the blob is under 4 GiB, else int64."""
    return values.astype(np.uint32 if not len(values) or values.max() < 2**32 else np.int64)


def _ids(values: Sequence[int]) -> np.ndarray:
    ids = np.asarray(values, dtype=np.int64)
    return ids.astype(np.int32) if not len(ids) or ids.max() < 2**31 else ids


def strings(paths: Sequence[bytes], uris: Sequence[bytes | None],
            ) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One blob of ``paths`` (then of the ``uris`` that are not their path's tail); starts and lengths."""
    n = len(paths)
    path_lengths = np.fromiter(map(len, paths), np.int64, n)
    path_starts = np.cumsum(path_lengths) - path_lengths
    uri_lengths = np.array([-1 if u is None else len(u) for u in uris], np.int64).reshape(n)
    tail = np.array([u is not None and p.endswith(u) for p, u in zip(paths, uris, strict=True)],
                    bool).reshape(n)
    uri_starts = np.where(tail, path_starts + path_lengths - uri_lengths, 0)
    blob = b"".join(paths)
    own = np.flatnonzero((uri_lengths >= 0) & ~tail)
    if len(own):
        lengths = uri_lengths[own]
        uri_starts[own] = len(blob) + np.cumsum(lengths) - lengths
        blob += b"".join(uris[i] for i in own)  # type: ignore[misc]
    return (blob, _offsets(path_starts), path_lengths.astype(np.int32), _offsets(uri_starts),
            uri_lengths.astype(np.int32))


class TableBuilder:
    """Builds a ``CandidateTable`` from chunks of rows (a streamed query adds one chunk at a time)."""

    def __init__(self, vocabulary: Vocabulary | None = None) -> None:
        self.vocabulary = vocabulary or Vocabulary()
        self._chunks: dict[str, list[np.ndarray]] = {name: [] for name in (*_ROW_COLUMNS, "acoustics")}
        self._blobs: list[bytes] = []
        self._size = 0

    def add(self, *, ids: Sequence[int], paths: Sequence[bytes], uris: Sequence[bytes | None],
            artists: Sequence[str], genres: Sequence[str], albums: Sequence[str], titles: Sequence[str],
            opening: np.ndarray, acoustics: Sequence[np.ndarray]) -> None:
        """One chunk of rows: ``albums`` are album keys ("": none); ``acoustics`` one column per
        ``ACOUSTIC_COLUMNS`` (brightness in Hz, onsets per second), NaN where unknown."""
        n = len(ids)
        blob, path_starts, path_lengths, uri_starts, uri_lengths = strings(paths, uris)
        folded = {artist: normalise(artist) for artist in set(artists)}
        columns = {
            "ids": _ids(ids), "path_starts": path_starts.astype(np.int64) + self._size,
            "path_lengths": path_lengths, "uri_starts": uri_starts.astype(np.int64) + self._size,
            "uri_lengths": uri_lengths,
            "uri_hash": np.array([NO_KEY if u is None else hash(u) for u in uris], np.int64).reshape(n),
            "artist": self.vocabulary.codes_of(artists), "genre": self.vocabulary.codes_of(genres),
            "album": np.array([hash(a.casefold()) & _POSITIVE if a else NO_KEY for a in albums],
                              np.int64).reshape(n),
            "recording": np.array([  # recording_key, with each artist folded once
                hash(f"{folded[a]}\0{name}") & _POSITIVE if (name := _normalised(t) if t else "") else NO_KEY
                for a, t in zip(artists, titles, strict=True)], np.int64).reshape(n),
            "opening": np.asarray(opening, dtype=np.float32).reshape(n, 2),
            "acoustics": acoustic_rows(acoustics, n),
        }
        for name, column in columns.items():
            self._chunks[name].append(column)
        self._blobs.append(blob)
        self._size += len(blob)

    def build(self) -> CandidateTable:
        """The table of every chunk added, in id order (each column's chunks freed once joined)."""
        if not self._blobs:
            return _empty(self.vocabulary)
        blob = b"".join(self._blobs)
        self._blobs, self._size = [], 0
        ids = np.concatenate(self._chunks.pop("ids"))
        order = np.argsort(ids, kind="stable") if np.any(np.diff(ids) <= 0) else slice(None)
        columns = {"ids": ids[order]}
        for name in _ROW_COLUMNS[1:]:
            columns[name] = np.concatenate(self._chunks.pop(name))[order]
        for name in _OFFSETS:
            columns[name] = _offsets(columns[name])
        acoustics = np.concatenate(self._chunks.pop("acoustics"), axis=1)[:, order]
        self._chunks = {name: [] for name in (*_ROW_COLUMNS, "acoustics")}
        return CandidateTable(**columns, blob=blob, acoustics=acoustics, vocabulary=self.vocabulary)


def acoustic_rows(columns: Sequence[np.ndarray | Sequence[float] | None], n: int) -> np.ndarray:
    """(8, n) float32 from ``ACOUSTIC_COLUMNS`` columns (``None``: unknown), brightness and onsets as
    log2 (NaN stays NaN)."""
    rows = np.full((len(ACOUSTIC_COLUMNS), n), np.nan, dtype=np.float64)
    for row, column in enumerate(columns):
        if column is not None:
            rows[row] = np.asarray(column, dtype=np.float64).reshape(n)
    rows[4:6] = np.log2(np.maximum(rows[4:6], MIN_BRIGHTNESS_HZ))
    rows[6:8] = np.log2(np.maximum(rows[6:8], MIN_ONSETS))
    return rows.astype(np.float32)


def _empty(vocabulary: Vocabulary) -> CandidateTable:
    builder = TableBuilder(vocabulary)
    builder.add(ids=[], paths=[], uris=[], artists=[], genres=[], albums=[], titles=[],
                opening=np.zeros((0, 2)), acoustics=[None] * len(ACOUSTIC_COLUMNS))
    return builder.build()
