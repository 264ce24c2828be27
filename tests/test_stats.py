"""The robustness statistics on hand-computed cases and edge cases (empty, all equal, ties)."""

import math
import random

import numpy as np
import pytest

from mdlm_viz import stats


def levenshtein_by_hand(a, b) -> int:
    """The textbook dynamic programme, the check on rapidfuzz."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


# ----------------------------------------------------------------------------- edit distance
def test_edit_distance_and_similarity():
    assert stats.edit_distance("kitten", "sitting") == 3
    assert stats.edit_distance("", "abc") == 3
    assert stats.edit_distance([1, 2, 3], [1, 3]) == 1
    assert stats.edit_similarity("", "") == 1.0
    assert stats.edit_similarity("abcd", "abcd") == 1.0
    assert stats.edit_similarity("abcd", "abed") == pytest.approx(0.75)
    assert stats.edit_similarity("ab", "xyz") == 0.0


def test_edit_distance_on_token_ids_edge_cases():
    assert stats.edit_distance([], []) == 0 and stats.edit_distance([], [4, 5]) == 2
    assert stats.edit_distance([7], []) == 1
    assert stats.edit_distance([1, 2], [2, 1]) == 2  # a swap is two edits, not one
    assert stats.edit_distance([126081, 5], [126081]) == 1  # ids beyond any character range
    assert stats.edit_similarity([], []) == 1.0 and stats.edit_similarity([], [3]) == 0.0
    assert stats.edit_similarity([0, 0, 0], [0, 0, 0]) == 1.0


def test_edit_distance_matches_the_textbook_programme():
    rng = random.Random(0)
    for _ in range(300):
        vocab = rng.choice([2, 5, 130000])
        a = [rng.randrange(vocab) for _ in range(rng.randrange(0, 20))]
        b = [rng.randrange(vocab) for _ in range(rng.randrange(0, 20))]
        d = levenshtein_by_hand(a, b)
        assert stats.edit_distance(a, b) == d
        assert stats.edit_similarity(a, b) == (1.0 if not (a or b) else 1.0 - d / max(len(a), len(b)))


# ----------------------------------------------------------------------------- win rule
def test_pairwise_win_ties_identical_text():
    assert stats.pairwise_win(0.9, 0.1, same=True) == 0.5  # identical text ties whatever the scores
    assert stats.pairwise_win((True, 1.0), (False, 0.9), same=False) == 1.0
    assert stats.pairwise_win((False, 0.95), (True, 0.5), same=False) == 0.0  # correctness first
    assert stats.pairwise_win((False, 0.5), (False, 0.5), same=False) == 0.5
    assert stats.pairwise_win(-2.0, -1.0, same=False) == 0.0


# ----------------------------------------------------------------------------- Pearson
def test_pearson_hand_case():
    assert stats.pearson([0, 1, 2, 3], [1, 3, 5, 7]) == pytest.approx(1.0)
    assert stats.pearson([0, 1, 2], [2, 1, 0]) == pytest.approx(-1.0)
    # x = 1..5, y = 2, 4, 5, 4, 5: r = 6 / sqrt(10 * 6) = 0.7746
    assert stats.pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]) == pytest.approx(6 / math.sqrt(60))
    assert math.isnan(stats.pearson([1, 2, 3], [1, 1, 1]))


def test_pearson_undefined_cases_are_nan():
    assert math.isnan(stats.pearson([1, 1, 1], [1, 2, 3]))  # constant x
    assert math.isnan(stats.pearson([2, 2], [5, 5]))
    assert math.isnan(stats.pearson([0.1], [0.5]))  # one point
    assert math.isnan(stats.pearson([], []))


def test_pearson_rows_is_pearson_per_row():
    xs = [0.0, 0.05, 0.1]
    ys = [[0.5, 0.25, 0.0], [0.5, 0.5, 0.5], [0.5, 0.3, 0.2]]
    got = stats.pearson_rows(xs, ys)
    assert got.shape == (3,) and math.isnan(got[1])
    assert got[0] == pytest.approx(-1.0) and got[2] == pytest.approx(stats.pearson(xs, ys[2]))


# ----------------------------------------------------------------------------- bootstrap
def test_resample_counts():
    counts = stats.resample_counts(7, 50, seed=3)
    assert counts.shape == (50, 7) and (counts.sum(1) == 7).all() and (counts >= 0).all()
    assert (stats.resample_counts(7, 50, seed=3) == counts).all()  # a seed gives the same resamples
    assert stats.resample_counts(1, 4).tolist() == [[1]] * 4
    with pytest.raises(ValueError, match="at least one row"):
        stats.resample_counts(0, 10)
    with pytest.raises(ValueError, match="at least one resample"):
        stats.resample_counts(5, 0)


def test_percentile_interval():
    assert stats.percentile_interval([3.0] * 10) == [3.0, 3.0]
    assert stats.percentile_interval([float("nan"), 1.0, float("nan")]) == [1.0, 1.0]  # undefined ones dropped
    assert stats.percentile_interval([float("nan")] * 3) is None
    lo, hi = stats.percentile_interval(np.arange(1001.0), level=0.9)
    assert (lo, hi) == pytest.approx((50.0, 950.0))


def test_mean_ci_brackets_the_mean():
    lo, hi = stats.mean_ci([0, 0, 1, 1, 1, 0, 1, 1], n_boot=500)
    assert lo < 5 / 8 < hi and 0 <= lo and hi <= 1


def test_mean_ci_edge_cases():
    assert stats.mean_ci([0.5] * 6, n_boot=100) == [0.5, 0.5]  # all equal: no spread
    assert stats.mean_ci([1.0], n_boot=20) == [1.0, 1.0]
    assert stats.mean_ci([0, 1] * 5, n_boot=200, seed=4) == stats.mean_ci([0, 1] * 5, n_boot=200, seed=4)
    with pytest.raises(ValueError):
        stats.mean_ci([], n_boot=10)


def test_mean_ci_agrees_with_the_normal_approximation():
    values = [1.0] * 120 + [0.0] * 280  # p = 0.3, n = 400: 1.96 * sqrt(p (1 - p) / n) = 0.0449
    lo, hi = stats.mean_ci(values, n_boot=4000)
    assert lo == pytest.approx(0.3 - 0.0449, abs=0.008) and hi == pytest.approx(0.3 + 0.0449, abs=0.008)


def test_paired_difference_hand_case():
    a = [1, 1, 0, 1, 0, 1, 1, 0]  # 5 / 8
    b = [1, 0, 0, 1, 0, 1, 0, 0]  # 3 / 8: a alone right on rows 1 and 6, b alone on none
    res = stats.paired_difference(a, b, n_boot=400)
    assert res["diff"] == pytest.approx(0.25) and (res["a_only"], res["b_only"]) == (2, 0)
    assert 0 <= res["ci"][0] <= 0.25 <= res["ci"][1]  # a never loses a pair: no resample goes below 0
    same = stats.paired_difference(a, a, n_boot=50)
    assert same["diff"] == 0 and same["ci"] == [0, 0]
    with pytest.raises(ValueError, match="same, non-zero length"):
        stats.paired_difference([1, 0], [1])


def test_paired_difference_edge_cases():
    with pytest.raises(ValueError, match="same, non-zero length"):
        stats.paired_difference([], [])
    one = stats.paired_difference([1.0], [0.0], n_boot=10)
    assert one["diff"] == 1.0 and one["ci"] == [1.0, 1.0] and (one["a_only"], one["b_only"], one["n"]) == (1, 0, 1)
    ties = stats.paired_difference([0.5, 1.0, 0.0], [0.5, 1.0, 0.0], n_boot=30)  # every pair tied
    assert (ties["diff"], ties["ci"], ties["a_only"], ties["b_only"]) == (0.0, [0.0, 0.0], 0, 0)
    assert isinstance(ties["a_only"], int) and isinstance(ties["diff"], float)  # plain JSON values


# ----------------------------------------------------------------------------- strength vs win rate
def test_strength_correlation_and_bootstrap():
    # Win rates 0.5, 1/3, 0 at r = 0, 5, 10%: Pearson r = -0.9820 by hand.
    wins = {(0.0, 0): [0.5] * 6, (0.05, 0): [0.5, 0.5, 0.5, 0.5, 0.0, 0.0], (0.1, 0): [0.0] * 6}
    res = stats.strength_correlation(wins, n_boot=200)
    assert res["r"] == pytest.approx(-0.98198, abs=1e-4)
    assert res["ci"][0] <= res["r"] <= res["ci"][1] and res["ci"][1] < 0
    exact = {(0.0, 0): [0.5] * 4, (0.05, 0): [0.25] * 4, (0.1, 0): [0.0] * 4}  # every prompt alike
    res = stats.strength_correlation(exact, n_boot=50)
    assert res["r"] == pytest.approx(-1.0) and res["ci"] == pytest.approx([-1.0, -1.0])
    flat = {(0.0, 0): [0.5] * 3, (0.1, 0): [0.5] * 3}
    assert stats.strength_correlation(flat, n_boot=20)["r"] is None  # constant win rate: undefined, not 0


def test_strength_correlation_edge_cases():
    flat = stats.strength_correlation({(0.0, 0): [0.5] * 3, (0.1, 0): [0.5] * 3}, n_boot=20)
    assert flat == {"r": None, "ci": None, "n_boot": 20}  # no resample defines r either
    one_point = stats.strength_correlation({(0.1, 0): [1.0, 0.0]}, n_boot=5)
    assert one_point["r"] is None and one_point["ci"] is None
    with pytest.raises(ValueError, match="no .* points"):
        stats.strength_correlation({}, n_boot=5)
    with pytest.raises(ValueError, match="same, non-zero number of prompts"):
        stats.strength_correlation({(0.0, 0): [0.5, 0.5], (0.1, 0): [0.0]}, n_boot=5)


def test_correlation_difference_is_paired():
    falls = {(0.0, 0): [0.5] * 4, (0.05, 0): [0.25] * 4, (0.1, 0): [0.0] * 4}  # r = -1 on every resample
    holds = {(0.0, 0): [0.5] * 4, (0.05, 0): [0.5, 0.5, 0.5, 0.0], (0.1, 0): [0.5, 0.5, 0.0, 0.5]}
    res = stats.correlation_difference(holds, falls, n_boot=200)
    r_holds = stats.strength_correlation(holds, n_boot=10)["r"]
    assert res["diff"] == pytest.approx(r_holds + 1.0)
    assert res["ci"][0] <= res["diff"] <= res["ci"][1]
    assert stats.correlation_difference(falls, falls, n_boot=20)["ci"] == pytest.approx([0.0, 0.0])
    with pytest.raises(ValueError, match="same"):
        stats.correlation_difference(falls, {(0.0, 0): [0.5] * 4}, n_boot=5)
    with pytest.raises(ValueError, match="same prompts"):
        stats.correlation_difference(falls, {p: w[:3] for p, w in falls.items()}, n_boot=5)


def test_correlation_difference_undefined():
    flat = {(0.0, 0): [0.5] * 3, (0.1, 0): [0.5] * 3}
    res = stats.correlation_difference(flat, flat, n_boot=10)
    assert res["diff"] is None and res["ci"] is None
