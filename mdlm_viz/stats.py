"""Statistics of the robustness evaluation: edit distance, the win rule, Pearson r, and percentile
bootstrap intervals over prompts.

Pure functions of lists and arrays (no model, no torch). Every bootstrap resamples prompts (rows)
with replacement and, within one call, uses the same resamples for every value it compares, so
paired values stay paired. Resamples come from `numpy.random.default_rng(seed)`: a seed gives the
same interval on every run.
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping, Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

Wins = Mapping[tuple[float, int], Sequence[float]]  # (strength, shift seed) -> the win of each prompt


# ----------------------------------------------------------------------------- texts
def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance between two sequences (strings, or lists of token ids)."""
    return Levenshtein.distance(a, b)


def edit_similarity(a: Sequence, b: Sequence) -> float:
    """1 - distance / longer length: 1 for equal sequences (two empty ones too), 0 for nothing in common."""
    return Levenshtein.normalized_similarity(a, b)


def pairwise_win(score_new, score_old, same: bool) -> float:
    """Win of the new output over the old one: 1, 0.5 (tie or identical text) or 0."""
    if same or score_new == score_old:
        return 0.5
    return 1.0 if score_new > score_old else 0.0


# ----------------------------------------------------------------------------- correlation
def pearson_rows(xs: Sequence[float], ys) -> np.ndarray:
    """Pearson r of xs [P] with each row of ys [B, P]: [B]; nan where xs or a row is constant
    (undefined, not 0), and everywhere when there are fewer than 2 points."""
    from scipy import stats  # here, not at the top: it takes a second to import and the app needs none of it

    xs, ys = np.asarray(xs, dtype=float), np.atleast_2d(np.asarray(ys, dtype=float))
    if xs.shape[-1] < 2:
        return np.full(ys.shape[0], np.nan)
    with warnings.catch_warnings():  # a constant row is expected here (a flat win rate): it is nan
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return np.asarray(stats.pearsonr(xs, ys, axis=-1).statistic, dtype=float).reshape(ys.shape[0])


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation; nan when either variable is constant."""
    return float(pearson_rows(xs, [ys])[0])


# ----------------------------------------------------------------------------- bootstrap
def resample_counts(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each of n rows is drawn in each of n_boot resamples with replacement: [n_boot, n]
    integer counts, each row summing to n. A resampled mean is then `counts @ values / n`."""
    if n < 1:
        raise ValueError("a bootstrap needs at least one row")
    if n_boot < 1:
        raise ValueError(f"a bootstrap needs at least one resample, got {n_boot}")
    drawn = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))  # [n_boot, n] row indices
    flat = (drawn + n * np.arange(n_boot)[:, None]).ravel()  # resample b's rows counted in bins b*n ... b*n+n-1
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n)


def percentile_interval(samples, level: float = 0.95) -> list[float] | None:
    """The central `level` interval of bootstrap statistics [n_boot] (nan ones dropped, as undefined);
    None when none is defined."""
    samples = np.asarray(samples, dtype=float)
    finite = samples[~np.isnan(samples)]
    if finite.size == 0:
        return None
    return np.quantile(finite, [(1 - level) / 2, (1 + level) / 2]).tolist()


def mean_ci(values: Sequence[float], n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> list[float]:
    """Percentile bootstrap CI of a mean."""
    v = np.asarray(values, dtype=float)  # [n]
    return percentile_interval(resample_counts(len(v), n_boot, seed) @ v / len(v), level)


def paired_difference(a: Sequence[float], b: Sequence[float], n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> dict:
    """mean(a) - mean(b) for two models measured on the same rows (prompts), with a percentile
    bootstrap CI that resamples rows, so each prompt's pair stays together: far tighter than two
    separate CIs when the models agree on most prompts. For 0/1 values `a_only` / `b_only` count
    the prompts only one model gets right (the discordant pairs a McNemar test reads)."""
    if len(a) != len(b) or not len(a):
        raise ValueError(f"paired values need the same, non-zero length: got {len(a)} and {len(b)}")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)  # [n] each
    d = a - b
    boots = resample_counts(len(d), n_boot, seed) @ d / len(d)  # [n_boot]
    return {"diff": float(d.mean()), "ci": percentile_interval(boots, level), "n": len(d),
            "a_only": int((a > b).sum()), "b_only": int((b > a).sum()), "n_boot": n_boot, "level": level}


# ----------------------------------------------------------------------------- strength vs win rate
def _win_matrix(wins: Wins) -> tuple[np.ndarray, np.ndarray]:
    """Points sorted by (strength, seed): their strengths [P] and the wins [P, n prompts]."""
    if not wins:
        raise ValueError("no (strength, seed) points to correlate")
    points = sorted(wins)
    lengths = {len(wins[p]) for p in points}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"every (strength, seed) point needs the same, non-zero number of prompts: got {lengths}")
    return np.array([s for s, _ in points], dtype=float), np.array([wins[p] for p in points], dtype=float)


def _none_if_nan(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def strength_correlation(wins_pp: Wins, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Pearson r between strength and win rate over the (strength, seed) points, with a
    percentile bootstrap CI: prompts resampled with replacement, the same rows for every point
    so pairs stay paired. `wins_pp[(strength, seed)]` lists the win of each prompt."""
    xs, w = _win_matrix(wins_pp)  # [P], [P, n]
    r = pearson(xs, w.mean(1))
    counts = resample_counts(w.shape[1], n_boot, seed)  # [n_boot, n]
    ci = percentile_interval(pearson_rows(xs, counts @ w.T / w.shape[1]), level)  # rates [n_boot, P]
    if ci is None:
        return {"r": _none_if_nan(r), "ci": None, "n_boot": n_boot}
    return {"r": _none_if_nan(r), "ci": ci, "n_boot": n_boot, "level": level}


def correlation_difference(wins_a: Wins, wins_b: Wins, n_boot: int = 1000, seed: int = 0,
                           level: float = 0.95) -> dict:
    """Pearson r(strength, win rate) of model a minus that of model b, on the same prompts, with
    a bootstrap CI that resamples the same prompt rows for both: a positive difference says a's
    win rate falls off less with strength than b's (the paper's claim for CTC against CE)."""
    if sorted(wins_a) != sorted(wins_b):
        raise ValueError("both models need the same (strength, seed) points")
    (xs, wa), (_, wb) = _win_matrix(wins_a), _win_matrix(wins_b)  # [P], [P, n] each
    if wa.shape != wb.shape:
        raise ValueError(f"both models need the same prompts: got {wa.shape[1]} and {wb.shape[1]}")
    n = wa.shape[1]
    full = pearson(xs, wa.mean(1)) - pearson(xs, wb.mean(1))
    counts = resample_counts(n, n_boot, seed)  # [n_boot, n], shared by both models
    boots = pearson_rows(xs, counts @ wa.T / n) - pearson_rows(xs, counts @ wb.T / n)  # [n_boot]
    return {"diff": _none_if_nan(full), "ci": percentile_interval(boots, level), "n_boot": n_boot, "level": level}
