"""The queue-keeping policy against a fake player: record, crop, top up, seed, suspend, modes."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import pytest

from queueemo.config import DaemonSettings
from queueemo.keeper import Keeper
from queueemo.player import QueueEntry, QueueState


@dataclass
class FakePlayer:
    """MPD's queue as a list of (id, uri); the fake plays, the test changes modes and entries."""

    songs: list[tuple[int, str]] = field(default_factory=list)
    current: int | None = None
    state: str = "stop"
    modes: dict[str, bool] = field(default_factory=dict)
    next_id: int = 100

    def queue(self) -> QueueState:
        entries = tuple(QueueEntry(pos, song_id, uri, f"artist of {uri}")
                        for pos, (song_id, uri) in enumerate(self.songs))
        return QueueState(self.state, self.current, entries, **self.modes)

    def delete(self, start: int, end: int) -> None:
        del self.songs[start:end]
        if self.current is not None:
            self.current -= end - start

    def add(self, uri: str) -> int:
        self.next_id += 1
        self.songs.append((self.next_id, uri))
        return self.next_id

    def play(self, song_id: int) -> None:
        self.current = [song for song, _ in self.songs].index(song_id)
        self.state = "play"


@dataclass(frozen=True)
class FakePick:
    """Only the URI matters to the policy; the picker's ``Pick`` is opaque to it."""

    uri: str


@dataclass
class FakePlanner:
    player: FakePlayer
    planned: list[tuple[int, str | None]] = field(default_factory=list)  # (count, reference uri)

    def plan(self, count: int, *, state: QueueState | None = None) -> list[FakePick]:
        assert state is not None
        reference = state.reference.uri if state.reference else None
        self.planned.append((count, reference))
        return [FakePick(f"pick{len(self.planned)}-{i}.ogg") for i in range(count)]

    user_clears_after_append: bool = False

    def append(self, picks: list[FakePick]) -> list[int]:
        song_ids = [self.player.add(pick.uri) for pick in picks]
        if self.user_clears_after_append:  # the user's clear lands before the daemon reads the queue
            self.player.songs.clear()
        return song_ids


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(player: FakePlayer | None = None, **daemon: object):
    player = player or FakePlayer()
    planner = FakePlanner(player)
    plays: list[tuple[str, str, float]] = []
    clock = Clock()
    settings = dataclasses.replace(DaemonSettings(watermark=2, keep_played=1, suspend_after_user_s=30),
                                   **daemon)
    keeper = Keeper(player, planner, settings, lambda *play: plays.append(play), clock=clock,
                    wall_clock=lambda: 5.0)
    return keeper, player, planner, plays, clock


def play(player: FakePlayer, position: int) -> None:
    player.current, player.state = position, "play"


def test_an_empty_queue_is_seeded_and_topped_up_to_the_watermark():
    keeper, player, planner, _, _ = make()
    keeper.keep(player.queue())
    assert planner.planned == [(2, None)]
    assert [uri for _, uri in player.songs] == ["pick1-0.ogg", "pick1-1.ogg"]


def test_picks_follow_the_last_queued_song_and_only_what_is_missing():
    keeper, player, planner, _, _ = make(player=FakePlayer(songs=[(1, "a.ogg"), (2, "b.ogg")]))
    play(player, 0)
    keeper.keep(player.queue())
    assert planner.planned == [(1, "b.ogg")]


def test_each_started_song_is_recorded_once():
    keeper, player, _, plays, _ = make(player=FakePlayer(songs=[(1, "a.ogg"), (2, "b.ogg")]))
    keeper.keep(player.queue())  # stopped: nothing played yet
    assert plays == []
    play(player, 0)
    keeper.keep(player.queue())
    keeper.keep(player.queue())
    play(player, 1)
    keeper.keep(player.queue())
    assert plays == [("a.ogg", "artist of a.ogg", 5.0), ("b.ogg", "artist of b.ogg", 5.0)]


def test_played_songs_beyond_keep_played_are_cropped():
    songs = [(i, f"{i}.ogg") for i in range(6)]
    keeper, player, _, _, _ = make(player=FakePlayer(songs=songs))
    play(player, 4)
    keeper.keep(player.queue())
    assert [uri for _, uri in player.songs][:3] == ["3.ogg", "4.ogg", "5.ogg"]
    assert player.current == 1


def test_a_cleared_queue_is_refilled_only_after_the_suspension():
    keeper, player, planner, _, clock = make()
    keeper.keep(player.queue())
    player.songs.clear()  # the user clears the queue
    keeper.keep(player.queue())
    assert player.songs == [] and keeper.suspended
    assert keeper.wake_in() == pytest.approx(30)
    clock.now += 29
    keeper.keep(player.queue())
    assert player.songs == []
    clock.now += 2
    assert keeper.wake_in() is None
    keeper.keep(player.queue())
    assert len(player.songs) == 2 and len(planner.planned) == 2


def test_a_clear_right_after_the_daemon_adds_is_still_a_clear():
    keeper, player, planner, _, _ = make()
    planner.user_clears_after_append = True
    keeper.keep(player.queue())
    planner.user_clears_after_append = False
    keeper.keep(player.queue())
    assert keeper.suspended and player.songs == [] and len(planner.planned) == 1


def run_off_the_end(player: FakePlayer) -> None:
    """What MPD does when its last song ends or is skipped: stopped, no current song."""
    player.current, player.state = None, "stop"


def test_a_queue_skipped_past_its_end_is_topped_up_and_played_on():
    """`mpc next` on the last song stopped MPD for good: with no current song every entry counted as
    upcoming, so nothing was added, and `play` replayed the queue from its first, played song."""
    songs = [(1, "a.ogg"), (2, "b.ogg"), (3, "c.ogg"), (4, "d.ogg")]
    keeper, player, planner, _, _ = make(player=FakePlayer(songs=songs))
    play(player, 1)
    keeper.keep(player.queue())  # two upcoming: nothing to add
    run_off_the_end(player)  # the user skips three times
    keeper.keep(player.queue())
    assert planner.planned == [(2, "d.ogg")]  # follows the last song; keep_played = 1 kept
    assert [uri for _, uri in player.songs] == ["d.ogg", "pick1-0.ogg", "pick1-1.ogg"]
    assert (player.state, player.current) == ("play", 1)


def test_a_stop_by_the_user_or_a_queue_never_played_is_not_played_on():
    keeper, player, planner, _, _ = make(player=FakePlayer(songs=[(1, "a.ogg"), (2, "b.ogg")]))
    keeper.keep(player.queue())  # stopped, never played: every entry is upcoming
    play(player, 0)
    keeper.keep(player.queue())
    player.state = "stop"  # `mpc stop`: MPD keeps its current song
    keeper.keep(player.queue())
    assert player.state == "stop" and len(planner.planned) == 1  # the one top-up while playing


def test_songs_added_by_hand_suspend_and_are_then_followed():
    keeper, player, planner, _, clock = make()
    keeper.keep(player.queue())
    player.songs[:] = [(7, "album/1.ogg")]  # clear, add an album's first song, play it
    play(player, 0)
    keeper.keep(player.queue())
    player.add("album/2.ogg")
    clock.now += 20
    keeper.keep(player.queue())  # another song by hand: the wait starts again
    clock.now += 20
    keeper.keep(player.queue())
    assert len(planner.planned) == 1
    clock.now += 11
    keeper.keep(player.queue())
    assert planner.planned[-1] == (1, "album/2.ogg")


def test_own_additions_never_suspend():
    keeper, player, planner, _, _ = make()
    keeper.keep(player.queue())
    play(player, 0)
    keeper.keep(player.queue())
    play(player, 1)
    keeper.keep(player.queue())
    assert not keeper.suspended and len(planner.planned) == 3


def test_zero_suspension_refills_at_once():
    keeper, player, _, _, _ = make(suspend_after_user_s=0)
    keeper.keep(player.queue())
    player.songs.clear()
    keeper.keep(player.queue())
    assert len(player.songs) == 2


def test_a_reconnect_is_not_taken_for_the_user():
    keeper, player, _, _, _ = make()
    keeper.keep(player.queue())
    player.songs.clear()  # MPD restarted with an empty queue
    keeper.reset()
    keeper.keep(player.queue())
    assert len(player.songs) == 2


@pytest.mark.parametrize("mode", ["single", "repeat"])
def test_single_and_repeat_mode_leave_the_queue_alone(mode):
    songs = [(i, f"{i}.ogg") for i in range(6)]
    keeper, player, planner, plays, _ = make(player=FakePlayer(songs=songs, modes={mode: True}))
    play(player, 5)
    keeper.keep(player.queue())
    assert len(player.songs) == 6 and planner.planned == []
    assert plays, "plays are still recorded"
    player.modes = {}
    keeper.keep(player.queue())
    assert len(player.songs) == 2 + 2 and planner.planned == [(2, "5.ogg")]


def test_single_mode_is_kept_when_configured():
    keeper, player, planner, _, _ = make(player=FakePlayer(modes={"single": True}),
                                         act_in_single_or_repeat=True)
    keeper.keep(player.queue())
    assert planner.planned == [(2, None)]


def test_random_and_consume_mode_are_warned_about_once(caplog):
    keeper, player, _, _, _ = make(player=FakePlayer(modes={"random": True}))
    with caplog.at_level(logging.WARNING, logger="queueemo.keeper"):
        keeper.keep(player.queue())
        keeper.keep(player.queue())
        player.modes = {"random": True, "consume": True}
        keeper.keep(player.queue())
        player.modes = {}
        keeper.keep(player.queue())
        player.modes = {"random": True}
        keeper.keep(player.queue())
    warnings = [r.getMessage() for r in caplog.records]
    assert [w.split(":")[0] for w in warnings] == [
        "MPD is in random mode", "MPD is in consume mode", "MPD is in random mode"]


def test_nothing_to_pick_is_a_warning_not_a_crash(caplog):
    keeper, player, planner, _, _ = make()
    planner.plan = lambda count, *, state=None: []
    with caplog.at_level(logging.WARNING, logger="queueemo.keeper"):
        keeper.keep(player.queue())
    assert "nothing left to pick" in caplog.text and player.songs == []
