"""The listener-agreement statistics behind the VGMIDI human ceiling, on synthetic listeners."""

import numpy as np
import pytest

from queueemo.emotion.training import agreement


def _listeners(rng, signal_sd: float, noise_sd: float, n: int = 30, measures: int = 40) -> np.ndarray:
    signal = rng.normal(0, signal_sd, measures)
    return signal + rng.normal(0, noise_sd, (n, measures))


def test_identical_listeners_are_perfectly_reliable():
    rng = np.random.default_rng(0)
    ratings = np.tile(rng.normal(size=32), (30, 1))
    r_half = agreement.split_half(ratings, rng, splits=50)
    assert r_half == pytest.approx(1.0)
    assert agreement.ceiling(agreement.spearman_brown(r_half)) == pytest.approx(1.0)
    assert agreement.one_against_rest(ratings) == pytest.approx(np.ones(30))


def test_independent_listeners_agree_on_nothing():
    rng = np.random.default_rng(1)
    values = [agreement.split_half(_listeners(rng, 0.0, 1.0), rng, splits=50) for _ in range(40)]
    assert abs(np.mean(values)) < 0.05
    assert abs(agreement.one_against_rest(_listeners(rng, 0.0, 1.0, n=200)).mean()) < 0.05


def test_signal_plus_noise_gives_the_spearman_brown_reliability():
    # Per listener the signal's share of variance is rho = 1 / (1 + 9) = 0.1; a panel of 30 has the
    # reliability 30 rho / (1 + 29 rho) = 0.769 and its mean correlates sqrt(0.769) with the signal.
    rng = np.random.default_rng(2)
    rho, n = 0.1, 30
    expected = n * rho / (1 + (n - 1) * rho)
    reliabilities, truths = [], []
    for _ in range(60):
        signal = rng.normal(0, 1, 200)
        ratings = signal + rng.normal(0, 3, (n, 200))
        reliabilities.append(agreement.spearman_brown(agreement.split_half(ratings, rng, splits=40)))
        truths.append(np.corrcoef(signal, ratings.mean(0))[0, 1])
    assert np.mean(reliabilities) == pytest.approx(expected, abs=0.03)
    assert agreement.ceiling(np.mean(reliabilities)) == pytest.approx(np.mean(truths), abs=0.03)


def test_spearman_brown_doubles_the_panel():
    assert agreement.spearman_brown(0.5) == pytest.approx(2 / 3)
    assert agreement.spearman_brown(0.0) == 0.0
    assert agreement.ceiling(-0.2) == 0.0
    assert agreement.panel_reliability(-0.4) == 0.0  # halves that disagree: no reliable course
    assert agreement.panel_reliability(0.5) == pytest.approx(2 / 3)


def test_a_piece_matches_only_the_annotation_it_reproduces():
    rng = np.random.default_rng(3)
    arousal, valence = _listeners(rng, 0.3, 0.2, n=5, measures=6), _listeners(rng, 0.3, 0.2, n=5, measures=6)
    times = np.arange(7) * 1.5
    mean = np.round(np.stack([arousal.mean(0), valence.mean(0)], axis=1), 4)
    std = np.round(np.stack([arousal.std(0), valence.std(0)], axis=1), 4)
    pieces = [agreement.Annotated("vg001", 5, mean, std, times[:-1], times[1:]),
              agreement.Annotated("vg002", 5, mean + 0.01, std, times[:-1], times[1:]),
              agreement.Annotated("vg003", 6, mean, std, times[:-1], times[1:])]
    match = agreement.match_piece(arousal, valence, pieces)
    assert (match.piece, match.ddof) == ("vg001", 0)
    assert match.max_delta <= 5e-5 + 1e-12
    typo = arousal.copy()
    typo[2, 3] += 0.01  # one mistranscribed value moves the mean by 0.002
    assert agreement.match_piece(typo, valence, pieces) is None


def test_pooled_agreement_rises_with_differences_between_pieces():
    rng = np.random.default_rng(4)
    pieces = [_listeners(rng, 0.1, 1.0, n=20, measures=30) + offset for offset in (-2, 0, 2)]
    pooled = agreement.pooled_split_half(pieces, rng, splits=50)
    within = np.mean([agreement.split_half(p, rng, splits=50) for p in pieces])
    assert pooled > 0.9 > within
    assert agreement.pooled_one_against_rest(pieces, rng, draws=50) > 0.5


def test_weighted_pearson_counts_points_by_weight():
    x, y = np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.0, -9.0])
    assert agreement.weighted_pearson(x, y, np.array([1, 1, 1, 0])) == pytest.approx(1.0)
    assert agreement.weighted_pearson(x, y) < 0
    assert agreement.weighted_pearson(x, np.zeros(4)) == 0.0


def test_windows_interpolate_between_measure_centres():
    starts, ends = np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0])
    curve = agreement.windows(np.array([0.0, 1.0, 0.0]), starts, ends)
    assert curve == pytest.approx([0.0, 0.25, 0.75, 0.75, 0.25, 0.0])  # centres 0.25, 0.75, ... s
