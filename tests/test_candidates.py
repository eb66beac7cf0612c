"""The compact candidate table: strings in one blob, the URI index, updates that compact the blob."""

from __future__ import annotations

import os

import numpy as np

from queueemo.candidates import NO_KEY, TableBuilder, UriIndex


def build(names: list[str], ids: list[int] | None = None, builder: TableBuilder | None = None):
    builder = builder or TableBuilder()
    n = len(names)
    builder.add(ids=ids or list(range(n)), paths=[os.fsencode(f"/x/music/{name}") for name in names],
                uris=[None if name.startswith("out") else os.fsencode(name) for name in names],
                artists=["Ann"] * n, genres=[""] * n, albums=[""] * n, titles=[""] * n,
                opening=np.zeros((n, 2)), acoustics=[None] * 6)
    return builder.build()


def test_strings_find_whole_entries_only() -> None:
    odd = os.fsdecode(b"caf\xe9\nnew.ogg")
    table = build(["a.ogg", "music/a.ogg", "out.ogg", odd])
    assert list(table.uris) == ["a.ogg", "music/a.ogg", None, odd]
    assert table.paths.index("/x/music/music/a.ogg") == 1
    assert "/music/a.ogg" not in table.paths  # only inside longer paths
    assert table.paths[3] == f"/x/music/{odd}"
    assert table.album.tolist() == [NO_KEY] * 4


def test_uri_index_finds_rows_and_skips_unreachable_files() -> None:
    table = build([f"{n}.ogg" for n in range(1000)] + ["out.ogg"])
    index = UriIndex(table.uris, table.uri_hash)
    assert len(index) == 1000 and index["731.ogg"] == 731 and index.get("out.ogg") is None
    assert "1000.ogg" not in index and None not in index


def test_updates_keep_id_order_and_compact_the_blob() -> None:
    table = build(["a.ogg", "b.ogg", "c.ogg"], ids=[5, 1, 9])
    assert table.ids.tolist() == [1, 5, 9] and list(table.uris) == ["b.ogg", "a.ogg", "c.ogg"]
    added = build(["new.ogg", "b2.ogg"], ids=[7, 1], builder=TableBuilder(table.vocabulary))
    kept = table.updated([9], added)  # a third of the blob unused: kept as it is
    assert kept.ids.tolist() == [1, 5, 7] and list(kept.uris) == ["b2.ogg", "a.ogg", "new.ogg"]
    assert kept.garbage() == len("/x/music/b.ogg/x/music/c.ogg")
    updated = table.updated([9, 5], added)  # more than half unused: compacted
    assert list(updated.paths) == ["/x/music/b2.ogg", "/x/music/new.ogg"] and updated.garbage() == 0
    assert list(table.uris) == ["b.ogg", "a.ogg", "c.ogg"]  # the old table is untouched


def test_normalised_titles_drop_remarks_and_punctuation() -> None:
    from queueemo.candidates import album_key, normalise, recording_key

    assert normalise("Song (Remastered 2011)") == "song" and normalise("Hey  Jude") == "hey jude"
    assert normalise("Don't Stop [Live]") == "don t stop" and normalise("a_b") == "a_b"
    assert recording_key("The Band", "Song (Live)") == recording_key("the band", "SONG")
    assert recording_key("Ann", "") == NO_KEY
    builder = TableBuilder()
    builder.add(ids=[1, 2], paths=[b"/a", b"/b"], uris=[b"a", b"b"], artists=["The Band", "Ann"],
                genres=["", ""], albums=["x\0One", ""], titles=["Song (Live)", ""], opening=np.zeros((2, 2)),
                acoustics=[None] * 6)
    table = builder.build()
    assert table.recording.tolist() == [recording_key("The Band", "Song (Live)"), NO_KEY]
    assert table.album.tolist() == [album_key("x\0One"), NO_KEY]
