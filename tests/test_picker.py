"""The pure picker: rules and ranking with a deterministic forecaster (no MPD, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from queueemo import picker
from queueemo.config import PickerSettings
from queueemo.picker import Candidates, Context, Play, Reason, Rules


def hold(history: np.ndarray, steps: int) -> np.ndarray:
    """Forecast that the emotion stays where the history ends."""
    return np.repeat(history[-1:], steps, axis=0)


def make(rows: list[tuple[str, str, str, float, float]]) -> Candidates:
    """Candidates from (uri, artist, genre, opening arousal, opening valence)."""
    return Candidates(
        paths=tuple(f"/music/{r[0]}" for r in rows),
        uris=tuple(r[0] for r in rows),
        artists=tuple(r[1] for r in rows),
        genres=tuple(r[2] for r in rows),
        opening=np.array([(r[3], r[4]) for r in rows], dtype=np.float32),
    )


CANDIDATES = make([
    ("near.ogg", "A", "rock", 0.50, 0.50),
    ("middle.ogg", "B", "jazz", 0.30, 0.30),
    ("far.ogg", "C", "pop", -0.80, -0.80),
    ("other.ogg", "D", "Noise; rock", 0.45, 0.40),
])
TAIL = np.full((10, 2), 0.5, dtype=np.float32)


NOW = Context(now=10_000.0)


def pick(rules: Rules, context: Context = NOW, **kw) -> picker.Pick | None:
    return picker.pick_next(
        candidates=CANDIDATES,
        base_reasons=picker.static_reasons(CANDIDATES, rules),
        context=context, rules=rules, reference="ref.ogg", tail=kw.pop("tail", TAIL),
        forecast=kw.pop("forecast", hold), rng=np.random.default_rng(0), **kw,
    )


def test_nearest_opening_to_the_forecast_wins():
    chosen = pick(Rules(tie_tolerance=0.0))
    assert chosen is not None
    assert chosen.uri == "near.ogg"
    assert chosen.distance == pytest.approx(0.0, abs=1e-6)
    assert chosen.forecast.shape == (1, 2)


def test_forecast_steps_are_averaged_into_one_target():
    def drift(history: np.ndarray, steps: int) -> np.ndarray:
        return np.array([[0.3, 0.3]] * steps, dtype=np.float32)

    chosen = pick(Rules(tie_tolerance=0.0, forecast_steps=3), forecast=drift)
    assert chosen is not None and chosen.uri == "middle.ogg"
    assert chosen.forecast.shape == (3, 2)


def test_recently_played_and_queued_tracks_are_skipped():
    context = Context(now=10_000.0, history=(Play("near.ogg", "A", 9_000.0),),
                      queue=(Play("other.ogg", "D"),))
    chosen = pick(Rules(tie_tolerance=0.0, artist_spacing=0), context)
    assert chosen is not None and chosen.uri == "middle.ogg"


def test_plays_older_than_the_repeat_window_count_again():
    context = Context(now=100_000.0, history=(Play("near.ogg", "A", 1_000.0),))
    chosen = pick(Rules(tie_tolerance=0.0, artist_spacing=0, repeat_window_s=3600.0), context)
    assert chosen is not None and chosen.uri == "near.ogg"


def test_artist_spacing_blocks_the_last_n_artists_only():
    history = (Play("x.ogg", "a", 9_000.0), Play("y.ogg", "Z", 9_100.0), Play("z.ogg", "Y", 9_200.0))
    context = Context(now=10_000.0, history=history)
    assert pick(Rules(tie_tolerance=0.0, artist_spacing=3), context).uri == "other.ogg"
    assert pick(Rules(tie_tolerance=0.0, artist_spacing=2), context).uri == "near.ogg"


def test_artist_spacing_counts_the_queue_after_the_current_song():
    history = (Play("cur.ogg", "Q", 9_000.0),)
    queue = (Play("old.ogg", "A"), Play("cur.ogg", "Q"), Play("next.ogg", "A"))
    chosen = pick(Rules(tie_tolerance=0.0, artist_spacing=2), Context(10_000.0, history, queue))
    assert chosen is not None and chosen.uri == "other.ogg"


def test_glob_and_genre_exclusions():
    rules = Rules(tie_tolerance=0.0, exclude_globs=("near.*",), exclude_genres=("noise",))
    reasons = picker.static_reasons(CANDIDATES, rules)
    assert list(reasons) == [Reason.EXCLUDED_PATH, 0, 0, Reason.EXCLUDED_GENRE]
    chosen = pick(rules)
    assert chosen is not None and chosen.uri == "middle.ogg"


def test_tracks_mpd_does_not_know_are_passed_over():
    chosen = pick(Rules(tie_tolerance=0.0), available=lambda uri: uri != "near.ogg", explain=4)
    assert chosen is not None and chosen.uri == "other.ogg"
    assert chosen.excluded_counts == {"unknown to mpd": 1}


def test_near_ties_are_broken_at_random_but_reproducibly():
    cands = make([(f"t{i}.ogg", f"a{i}", "", 0.5 + i * 0.001, 0.5) for i in range(20)])
    rules = Rules(tie_tolerance=0.05, artist_spacing=0)
    seen = {
        picker.pick_next(candidates=cands, base_reasons=picker.static_reasons(cands, rules),
                         context=Context(0.0), rules=rules, reference=None, tail=TAIL,
                         forecast=hold, rng=np.random.default_rng(seed)).uri
        for seed in range(10)
    }
    assert len(seen) > 3


def test_nothing_allowed_gives_none():
    context = Context(now=0.0, queue=tuple(Play(u) for u in CANDIDATES.uris))
    assert pick(Rules(), context) is None


def test_empty_tail_seeds_with_a_random_allowed_track():
    chosen = pick(Rules(exclude_genres=("rock", "jazz")), tail=np.zeros((0, 2), np.float32))
    assert chosen is not None and chosen.uri == "far.ogg"
    assert chosen.forecast.shape == (0, 2)


def test_explanation_lists_top_candidates_and_exclusions_by_distance():
    context = Context(now=10_000.0, queue=(Play("near.ogg", "Q"),))
    chosen = pick(Rules(tie_tolerance=0.0, artist_spacing=0), context, explain=2)
    assert chosen is not None
    assert [r.uri for r in chosen.top] == ["other.ogg", "middle.ogg"]
    assert chosen.excluded[0].uri == "near.ogg"
    assert chosen.excluded[0].reason is Reason.QUEUED  # queued, not "recently played"
    assert chosen.excluded_counts == {"queued": 1}


def test_pick_many_follows_each_pick_and_never_repeats():
    tails = {
        "near.ogg": np.full((10, 2), -0.8, np.float32),
        "far.ogg": np.full((10, 2), 0.3, np.float32),
        "middle.ogg": np.full((10, 2), 0.45, np.float32),
    }
    rules = Rules(tie_tolerance=0.0, artist_spacing=1)
    picks = picker.pick_many(
        4, candidates=CANDIDATES, base_reasons=picker.static_reasons(CANDIDATES, rules),
        context=Context(0.0), rules=rules, reference="ref.ogg", tail=TAIL,
        tail_of=lambda uri: tails.get(uri, TAIL), forecast=hold, rng=np.random.default_rng(1),
    )
    assert [p.uri for p in picks] == ["near.ogg", "far.ogg", "middle.ogg", "other.ogg"]
    assert picks[1].reference == "near.ogg"


def test_rules_follow_the_picker_settings():
    rules = Rules.from_settings(PickerSettings(repeat_window_hours=2, artist_spacing=5))
    assert rules.repeat_window_s == 7200.0 and rules.artist_spacing == 5
