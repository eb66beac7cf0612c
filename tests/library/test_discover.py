"""Finding files: extensions, symlinks, loops and names that are not valid UTF-8."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from queueemo.errors import QueueemoError
from queueemo.library.discover import discover, resolve_roots
from queueemo.library.hashing import SAMPLE_BYTES, content_hash


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _found(*roots: Path) -> list[str]:
    return sorted(found.rel_path for found in discover(resolve_roots(roots)))


def test_audio_files_are_picked_by_extension(tmp_path: Path) -> None:
    _touch(tmp_path / "a.FLAC")
    _touch(tmp_path / "sub" / "b.mp3")
    _touch(tmp_path / "cover.jpg")
    _touch(tmp_path / "notes.txt")
    assert _found(tmp_path) == ["a.FLAC", os.path.join("sub", "b.mp3")]


def test_symlink_loops_end_and_linked_folders_are_not_indexed_twice(tmp_path: Path) -> None:
    music = tmp_path / "music"
    _touch(music / "album" / "song.ogg")
    (music / "album" / "loop").symlink_to(music)
    (music / "again").symlink_to(music / "album")
    (music / "single.mp3").symlink_to(music / "album" / "song.ogg")
    (music / "dangling.mp3").symlink_to(tmp_path / "missing.mp3")
    assert _found(music) == ["album/song.ogg", "single.mp3"]


def test_odd_names_are_kept_exactly(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9 \xff.mp3"  # Latin-1, not UTF-8
    with open(raw, "wb") as file:
        file.write(b"x")
    _touch(tmp_path / "new\nline.wav")
    _touch(tmp_path / "日本語.opus")
    found = {item.path: item for item in discover(resolve_roots([tmp_path]))}
    assert os.fsdecode(raw) in found
    assert str(tmp_path / "new\nline.wav") in found
    assert str(tmp_path / "日本語.opus") in found


def test_missing_root_is_an_error_not_an_empty_library(tmp_path: Path) -> None:
    with pytest.raises(QueueemoError, match="does not exist"):
        resolve_roots([tmp_path / "unmounted"])


@pytest.mark.parametrize("root", ["", "notes.txt"])
def test_an_empty_root_or_a_file_that_is_not_audio_is_an_error(tmp_path: Path, root: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``scan ""`` scanned the current folder, ``scan notes.txt`` scanned nothing and said all was well."""
    monkeypatch.chdir(tmp_path)
    _touch(tmp_path / "notes.txt")
    _touch(tmp_path / "song.mp3")
    with pytest.raises(QueueemoError, match=r"an empty path|neither a folder nor an audio file"):
        resolve_roots([root])


def test_a_file_can_be_scanned_as_a_root(tmp_path: Path) -> None:
    song = _touch(tmp_path / "one.mp3")
    [found] = discover(resolve_roots([song]))
    assert (found.root, found.rel_path) == (str(tmp_path), "one.mp3")


def test_content_hash_ignores_the_name_and_sees_the_bytes(tmp_path: Path) -> None:
    big = os.urandom(5 * SAMPLE_BYTES)
    first = _touch(tmp_path / "a.flac", big)
    second = _touch(tmp_path / "b.flac", big)
    changed = _touch(tmp_path / "c.flac", big[:-1] + b"\0")
    size = len(big)
    assert content_hash(str(first), size) == content_hash(str(second), size)
    assert content_hash(str(first), size) != content_hash(str(changed), size)
    assert content_hash(str(tmp_path / "gone.flac"), size) is None
