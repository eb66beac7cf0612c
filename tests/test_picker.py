"""The pure picker: rules and ranking with a deterministic forecaster (no MPD, no model)."""

from __future__ import annotations

import dataclasses

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


def test_a_followed_song_counts_as_just_played():
    """`next --from near.ogg` picked near.ogg itself: the followed song was in no rule's sight."""
    context = Context(now=10_000.0, followed=Play("near.ogg", "A", 10_000.0))
    chosen = pick(Rules(tie_tolerance=0.0, artist_spacing=0), context, explain=4)
    assert chosen is not None and chosen.uri == "other.ogg"
    assert ("near.ogg", Reason.FOLLOWED) in [(r.uri, r.reason) for r in chosen.excluded]
    spaced = dataclasses.replace(context, followed=Play("elsewhere.ogg", "A", 10_000.0))
    assert pick(Rules(tie_tolerance=0.0, artist_spacing=1), spaced).uri == "other.ogg"  # artist A
    assert pick(Rules(tie_tolerance=0.0, artist_spacing=1), Context(now=10_000.0)).uri == "near.ogg"


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


# --- rules that fit the library -------------------------------------------------------------------


def library(artists: int, per_artist: int, **extra) -> Candidates:
    """``artists`` × ``per_artist`` tracks on one album per artist, openings on a line."""
    rows = [(f"{a}-{t}.ogg", f"artist{a}", "", t / per_artist, 0.0)
            for a in range(artists) for t in range(per_artist)]
    return Candidates(
        paths=tuple(f"/music/{r[0]}" for r in rows), uris=tuple(r[0] for r in rows),
        artists=tuple(r[1] for r in rows), genres=("",) * len(rows),
        opening=np.array([(r[3], r[4]) for r in rows], dtype=np.float32),
        albums=tuple(f"album{r[1]}" for r in rows), **extra,
    )


def pick_from(cands: Candidates, rules: Rules, context: Context, **kw) -> picker.Pick | None:
    return picker.pick_next(candidates=cands, base_reasons=picker.static_reasons(cands, rules),
                            context=context, rules=rules, reference=kw.pop("reference", "ref"),
                            tail=kw.pop("tail", TAIL), forecast=hold, rng=np.random.default_rng(0),
                            **kw)


def test_spacing_relaxes_artist_first_then_album_when_too_few_would_be_left():
    cands = library(4, 10)
    history = tuple(Play(f"{a}-0.ogg", f"artist{a}", 9_000.0 + a) for a in (1, 2, 3))
    rules = Rules(tie_tolerance=0.0, artist_spacing=3, album_spacing=3, min_choice_share=0.3)
    chosen = pick_from(cands, rules, Context(10_000.0, history), explain=3)
    # spacing 3 leaves only artist0's 10 of 37 tracks (< 30 %): both spacings relax to 2
    assert chosen.relaxed == ("artist spacing 3 → 2", "album spacing 3 → 2")
    assert chosen.artist in {"artist0", "artist1"}
    strict = pick_from(cands, Rules(tie_tolerance=0.0, min_choice_share=0.2), Context(10_000.0, history))
    assert strict.relaxed == () and strict.artist == "artist0"


def test_album_spacing_blocks_compilations_by_album():
    cands = library(1, 4)
    cands = Candidates(paths=cands.paths, uris=cands.uris, artists=("A", "B", "C", "D"),
                       genres=cands.genres, opening=cands.opening, albums=("x", "x", "y", "y"))
    history = (Play("0-3.ogg", "D", 9_000.0),)
    rules = Rules(tie_tolerance=0.0, artist_spacing=0, album_spacing=1, min_choice_share=0.1)
    chosen = pick_from(cands, rules, Context(10_000.0, history), tail=np.zeros((10, 2), np.float32),
                       explain=4)
    assert chosen.uri == "0-0.ogg"
    assert chosen.excluded_counts == {"album spacing": 1, "recently played": 1}


def test_the_same_recording_on_another_release_is_a_duplicate():
    cands = Candidates(
        paths=("/m/a", "/m/b", "/m/c"), uris=("a", "b", "c"), artists=("Band", "BAND", "Band"),
        genres=("",) * 3, opening=np.array([[0.5, 0.5], [0.5, 0.5], [0.0, 0.0]], np.float32),
        titles=("Song", "Song (2011 Remaster)", "Other"),
    )
    rules = Rules(tie_tolerance=0.0, artist_spacing=0, min_choice_share=0.1)
    chosen = pick_from(cands, rules, Context(10_000.0, (Play("a", "Band", 9_000.0),)), explain=3)
    assert chosen.uri == "c"
    assert chosen.excluded_counts == {"duplicate recording": 1, "recently played": 1}
    alone = pick_from(cands, rules, Context(10_000.0, (Play("a", "Band", 9_000.0),
                                                       Play("c", "Band", 9_500.0))))
    assert alone.uri == "b" and alone.relaxed == ("duplicate recordings allowed",)


def test_an_exhausted_repeat_window_falls_back_to_the_least_recently_played():
    cands = library(1, 10)
    history = tuple(Play(u, "artist0", 1_000.0 * (i + 1)) for i, u in enumerate(cands.uris))
    rules = Rules(tie_tolerance=0.0, artist_spacing=0, min_choice_share=0.3)
    chosen = pick_from(cands, rules, Context(10_500.0, history), tail=np.ones((10, 2), np.float32))
    assert chosen is not None and chosen.fallback
    assert chosen.uri in {"0-0.ogg", "0-1.ogg", "0-2.ogg"}  # the oldest 30 %, nearest wins
    assert chosen.uri == "0-2.ogg"
    queued = Context(10_500.0, queue=tuple(Play(u) for u in cands.uris))
    assert pick_from(cands, rules, queued) is None  # queued tracks never come back
    counts = picker.blocked_counts(candidates=cands, base_reasons=picker.static_reasons(cands, rules),
                                   context=queued, rules=rules)
    assert counts == {"queued": 10}


# --- boundary continuity and the truth in explanations ---------------------------------------------


def test_loudness_and_brightness_jumps_join_the_distance_as_visible_terms():
    cands = Candidates(
        paths=("/m/ref", "/m/quiet", "/m/loud"), uris=("ref", "quiet", "loud"),
        artists=("R", "Q", "L"), genres=("",) * 3,
        opening=np.array([[0.0, 0.0], [0.5, 0.5], [0.52, 0.5]], np.float32),
        opening_lufs=np.array([-10.0, -30.0, -10.0]), ending_lufs=np.array([-10.0, -30.0, -10.0]),
        opening_brightness=np.array([1000.0, 1000.0, 1000.0]),
        ending_brightness=np.array([1000.0, 1000.0, 1000.0]),
    )
    flat = Rules(tie_tolerance=0.0, artist_spacing=0)
    context = Context(0.0, queue=(Play("ref"),))
    assert pick_from(cands, flat, context).uri == "quiet"  # emotion alone
    rules = Rules(tie_tolerance=0.0, artist_spacing=0, loudness_weight=0.2, brightness_weight=0.1)
    chosen = pick_from(cands, rules, context, explain=3)
    assert chosen.uri == "loud"
    assert chosen.jumps[0] == pytest.approx(0.0)
    quiet = next(r for r in chosen.top if r.uri == "quiet")
    spread = np.std([-10, -30, -10, -10, -30, -10])
    assert quiet.terms[1] == pytest.approx(0.2 * 20 / spread)
    assert quiet.distance == pytest.approx(sum(quiet.terms))


def test_the_onset_density_jump_is_a_fourth_visible_term_on_a_log_scale():
    # ref ends busy (8 onsets/s); "sparse" opens at 1/s, emotionally closer; "busy" opens at 8/s.
    cands = Candidates(
        paths=("/m/ref", "/m/sparse", "/m/busy", "/m/old"), uris=("ref", "sparse", "busy", "old"),
        artists=("R", "S", "B", "O"), genres=("",) * 4,
        opening=np.array([[0.0, 0.0], [0.5, 0.5], [0.55, 0.5], [0.56, 0.5]], np.float32),
        opening_onsets=np.array([8.0, 1.0, 8.0, np.nan]), ending_onsets=np.array([8.0, 1.0, 8.0, np.nan]),
    )
    context = Context(0.0, queue=(Play("ref"),))
    assert pick_from(cands, Rules(tie_tolerance=0.0, artist_spacing=0), context).uri == "sparse"
    rules = Rules(tie_tolerance=0.0, artist_spacing=0, onset_weight=0.3)
    chosen = pick_from(cands, rules, context, explain=4)
    assert chosen.uri == "busy"
    assert chosen.jumps[2] == pytest.approx(0.0) and np.isnan(chosen.jumps[0])
    sparse = next(r for r in chosen.top if r.uri == "sparse")
    spread = np.std([3.0, 0.0, 3.0] * 2)  # log2 onsets/s of the tracks that have them
    assert sparse.terms[3] == pytest.approx(0.3 * 3 / spread)  # three octaves of onset density
    assert sparse.distance == pytest.approx(sum(sparse.terms))
    old = next(r for r in chosen.top if r.uri == "old")  # analysed before onsets were stored
    assert old.terms[3] == pytest.approx(0.3)  # a typical jump: one spread
    from queueemo.pick_report import explain_pick, pick_record

    assert "+ onsets 0.000" in explain_pick(chosen) and "onsets +0.00 octaves" in explain_pick(chosen)
    assert pick_record(chosen)["terms"]["onsets"] == 0.0


def test_near_ties_are_said_and_an_unanalysed_reference_gets_no_distances():
    cands = make([(f"t{i}.ogg", f"a{i}", "", 0.5 + i * 0.001, 0.5) for i in range(5)])
    rules = Rules(tie_tolerance=0.05, artist_spacing=0)
    assert pick_from(cands, rules, Context(0.0)).tied == 5
    blind = pick_from(cands, rules, Context(0.0), tail=np.zeros((0, 2), np.float32), explain=2)
    assert blind.basis == "unanalysed" and blind.distance == 0.0
    from queueemo.pick_report import explain_pick

    text = explain_pick(dataclasses.replace(blind, unanalysed="a track whose analysis failed (not audio)"))
    assert "whose analysis failed" in text and "#1" not in text and "not in the index" not in text


# --- arc and path --------------------------------------------------------------------------------


def test_arc_targets_move_with_time_and_end_in_flow():
    from queueemo.arc import parse_arc

    arc = parse_arc("calm:energetic", 30)
    assert arc.target(0) == pytest.approx([-0.6, 0.4])
    assert arc.target(15 * 60) == pytest.approx([0.05, 0.3])
    assert arc.target(30 * 60) is None
    three = parse_arc("sad:0,0:happy", 10)
    assert three.target(5 * 60) == pytest.approx([0.0, 0.0])


def test_arc_picks_follow_the_clock_by_track_durations():
    cands = library(1, 21, durations=np.full(21, 60.0))
    from queueemo.arc import parse_arc

    arc = parse_arc("0,0:1,0", 10)  # arousal climbs 0 → 1 over 10 minutes of 1-minute tracks
    rules = Rules(tie_tolerance=0.0, artist_spacing=0, album_spacing=0)
    picks = picker.pick_many(
        12, candidates=cands, base_reasons=picker.static_reasons(cands, rules), context=Context(0.0),
        rules=rules, reference="ref", tail=TAIL, tail_of=lambda uri: TAIL, forecast=hold,
        rng=np.random.default_rng(0), target_at=lambda i, elapsed: arc.target(elapsed),
    )
    arousal = [float(cands.opening[cands.index[p.uri], 0]) for p in picks]
    assert arousal[:10] == pytest.approx([i / 10 for i in range(10)], abs=0.03)
    assert [p.basis for p in picks] == ["target"] * 10 + ["forecast"] * 2  # the arc is over


def test_path_steps_are_even_and_picks_move_monotonically_to_the_end():
    from queueemo.arc import path_targets

    targets = path_targets(np.array([-0.8, -0.4]), np.array([0.8, 0.4]), 4)
    assert targets[-1] == pytest.approx([0.8, 0.4])
    steps = np.diff(np.vstack([[-0.8, -0.4], targets]), axis=0)
    assert np.allclose(steps, steps[0])
    cands = library(3, 30)
    rules = Rules(tie_tolerance=0.0, artist_spacing=1, album_spacing=1)
    line = path_targets(np.array([0.0, 0.0]), np.array([1.0, 0.0]), 6)
    picks = picker.pick_many(
        5, candidates=cands, base_reasons=picker.static_reasons(cands, rules), context=Context(0.0),
        rules=rules, reference="ref", tail=TAIL, tail_of=lambda uri: TAIL, forecast=hold,
        rng=np.random.default_rng(0), target_at=lambda i, elapsed: line[i],
    )
    arousal = [float(cands.opening[cands.index[p.uri], 0]) for p in picks]
    assert arousal == sorted(arousal) and len(set(arousal)) == 5


def test_malformed_arcs_name_the_accepted_forms():
    from queueemo.arc import parse_arc
    from queueemo.errors import QueueemoError

    for text in ("calm", "calm:bogus", "1,2,3:calm", ":", "calm:1.5,0"):
        with pytest.raises(QueueemoError, match="accepted forms"):
            parse_arc(text, 30)


def test_the_arc_start_survives_restarts_and_a_new_arc_starts_now(tmp_path):
    from queueemo.queueing import arc_started

    state = tmp_path / "state" / "arc.json"
    assert arc_started(state, "calm:energetic", 30.0, 1_000.0) == 1_000.0
    assert arc_started(state, "calm:energetic", 30.0, 5_000.0) == 1_000.0  # restarted process
    assert arc_started(state, "sad:happy", 30.0, 6_000.0) == 6_000.0
    state.write_text("not json")
    assert arc_started(state, "sad:happy", 30.0, 7_000.0) == 7_000.0
