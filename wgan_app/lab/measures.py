"""What the Lab measures: the exact W1 between two point sets, mode coverage of a mixture, and
the closed-form distances of the WGAN paper's parallel-lines example.

All numpy/scipy, no torch: these run on samples the session has already pulled off the nets.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from scipy.stats import spearmanr

from ..errors import UserError


def exact_w1(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 between the empirical distributions of two equal-size point sets (n, d).

    With n points of weight 1/n on each side the optimal transport plan is a permutation
    (Birkhoff), so W1 = min over assignments of the mean Euclidean distance, which the
    Hungarian algorithm (scipy's `linear_sum_assignment`) finds exactly. O(n^3): about 10 ms at
    n = 256 here. The empirical W1 of two samples of the *same* distribution is not 0 (it falls
    like n^(-1/2) in 2-D): compare against `exact_w1(real, other_real)`, the sampling floor.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or a.shape != b.shape or len(a) == 0:
        raise UserError(f"exact W1 needs two non-empty point sets of the same shape, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.inf  # a diverged generator: no transport plan to compute
    cost = cdist(a, b)  # (n, n) Euclidean distances
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def min_count_for(n: int) -> int:
    """PacGAN's rule (Lin et al. 2018, 2-D grid): a mode is lost when fewer than 20 of 2,500
    samples land on it with high quality; the same share for n samples, at least 1."""
    return max(1, math.ceil(20 * n / 2500))


def mode_coverage(x: np.ndarray, centres: np.ndarray, sigma: float, min_count: int | None = None) -> dict:
    """How many modes of a Gaussian mixture the samples x (n, 2) cover, VEEGAN / PacGAN style.

    A sample is *high quality* when it lies within 3 sigma (Euclidean) of its nearest centre;
    a mode is *covered* when at least `min_count` high-quality samples have it as their nearest.
    Returns {"modes": covered, "of": K, "high_quality": share of samples in [0, 1],
    "per_mode": (K,) int counts of high-quality samples}.
    """
    x = np.asarray(x, np.float64)
    n, k = len(x), len(centres)
    if n == 0:
        raise UserError("mode coverage needs at least one sample")
    if min_count is None:
        min_count = min_count_for(n)
    finite = np.isfinite(x).all(1)
    d = cdist(np.where(finite[:, None], x, 0.0), centres)  # (n, K)
    nearest, dist = d.argmin(1), d.min(1)
    good = finite & (dist <= 3 * sigma)
    per_mode = np.bincount(nearest[good], minlength=k)
    return {"modes": int((per_mode >= min_count).sum()), "of": k, "high_quality": float(good.mean()),
            "per_mode": per_mode}


def tracking(steps, values, at_steps, w1, min_points: int = 5) -> float | None:
    """Spearman correlation between a per-step training curve and the exact W1 (claim 2).

    `values` (logged at `steps`) is averaged over each measurement's window, the steps after the
    previous measurement up to its own, since one batch's estimate is noisy; `w1` was measured
    at `at_steps` (increasing). None with fewer than `min_points` usable windows, or when
    either side is constant (no ranking to compare).
    """
    steps, values = np.asarray(steps, np.float64), np.asarray(values, np.float64)
    at, w = np.asarray(at_steps, np.float64), np.asarray(w1, np.float64)
    # index ranges (hi[i-1], hi[i]] of the curve that fall in measurement i's window
    hi = np.searchsorted(steps, at, side="right")
    lo = np.concatenate([[0], hi[:-1]])
    xs, ys = [], []
    for a, b, wi in zip(lo, hi, w):
        window = values[a:b]
        window = window[np.isfinite(window)]
        if len(window) and math.isfinite(wi):
            xs.append(window.mean())
            ys.append(wi)
    if len(xs) < min_points or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return None
    return float(spearmanr(xs, ys).statistic)


# --- the parallel lines (Arjovsky et al. 2017, Example 1) -------------------------------------
# P0 is uniform on {0} x [0, 1], P_theta uniform on {theta} x [0, 1]. For theta != 0 the two
# supports are disjoint, so every divergence that compares densities point by point is stuck at
# its maximum however close the lines are, while W1 shrinks with the distance between them.


def parallel_lines_distances(theta: float) -> dict[str, float]:
    """The closed forms of Example 1: W1 = |theta|; JS = log 2, KL = inf, TV = 1 for theta != 0
    (all 0 at theta = 0)."""
    apart = theta != 0
    return {"W1": abs(float(theta)), "JS": math.log(2) if apart else 0.0,
            "KL": math.inf if apart else 0.0, "TV": 1.0 if apart else 0.0}


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (natural log) between two histograms of the same shape."""
    p = np.asarray(p, np.float64).ravel()
    q = np.asarray(q, np.float64).ravel()
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a, b):
        nz = a > 0
        return float((a[nz] * np.log(a[nz] / b[nz])).sum())

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)
