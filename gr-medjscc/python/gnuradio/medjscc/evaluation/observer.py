"""Channelized Hotelling observer (CHO) for signal-known-exactly detection at a known location.

The model observer of objective image-quality assessment (Barrett & Myers, *Foundations of Image
Science*, ch. 13-14; ICRU Report 54; AAPM TG-233): the image around the (known) lesion position
is reduced to a few channel responses ``v = U^T g``; the observer's template is the Hotelling
template in channel space, ``w = S^-1 (mean v_present - mean v_absent)`` with ``S`` the average
of the two classes' channel covariances, and its test statistic is ``t = w^T v``.

Channels: rotationally symmetric Laguerre-Gauss functions centred on the lesion,
``u_p(r) = sqrt(2)/a exp(-pi r^2/a^2) L_p(2 pi r^2/a^2)``, ``p = 0..N_CHANNELS-1``, with the
width ``a = WIDTH_FACTOR x`` the lesion's projected radius, so one channel set serves nodules of
every size (each image gets channels scaled to its own lesion; the position is known to
sub-pixel precision).

Figures of merit (``evaluate``): the observer is trained and tested on separate images by
K-fold cross-validation over *pairs* (both images of a view are always in the same fold), so
every image gets a score from a template that never saw it; ``auc`` is the empirical
(Mann-Whitney) AUC of those scores, ``dprime`` the detectability
``(mean t1 - mean t0) / sqrt((var t1 + var t0)/2)`` of the same scores (for Gaussian scores
``AUC = Phi(d'/sqrt 2)``), and ``auc_lo``/``auc_hi`` a percentile bootstrap interval
(pairs resampled with replacement, ``N_BOOT`` replicates, fixed seed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

N_CHANNELS = 6
WIDTH_FACTOR = 1.0        # LG width a = WIDTH_FACTOR x projected nodule radius (px); bench/nodule_calibration.py
MIN_WIDTH_PX = 3.0        # below this the channels would be sampled by a pixel or two
FOLDS = 2
N_BOOT = 1000
CI = 0.95
RIDGE = 1e-6              # relative ridge on S: all-grey (failed) images make S singular


def observer_tag() -> str:
    """What defines the channel responses (stored with them; other settings are not mixed)."""
    return f"cho-lg{N_CHANNELS}-a{WIDTH_FACTOR:g}r-min{MIN_WIDTH_PX:g}"


def channel_width(radius_px: float) -> float:
    return max(MIN_WIDTH_PX, WIDTH_FACTOR * float(radius_px))


def lg_channels(width: float, offset=(0.0, 0.0), n_channels: int | None = None) -> tuple[np.ndarray, int]:
    """(n_channels, 2h+1, 2h+1) Laguerre-Gauss channels of width ``width`` (px) on a pixel grid
    whose centre pixel is ``offset`` (row, col) away from the lesion centre; returns (U, h)."""
    from scipy.special import eval_laguerre

    n_channels = N_CHANNELS if n_channels is None else int(n_channels)
    if width <= 0:
        raise InputError(f"channel width must be positive, got {width}")
    h = int(math.ceil(3.0 * width)) + 1      # p = 5 channel has decayed to < 1e-5 of its peak there
    ax = np.arange(-h, h + 1, dtype=np.float64)
    yy, xx = np.meshgrid(ax - offset[0], ax - offset[1], indexing="ij")
    g = 2.0 * math.pi * (yy ** 2 + xx ** 2) / width ** 2
    env = math.sqrt(2.0) / width * np.exp(-g / 2.0)
    return np.stack([env * eval_laguerre(p, g) for p in range(n_channels)]), h


def channel_responses(image: np.ndarray, centre_rc, radius_px: float) -> np.ndarray:
    """``v = U^T g`` (N_CHANNELS,) of a grey image (any dtype) around the lesion centre
    ``centre_rc`` = (row, col) in pixels; pixels outside the image are the edge value."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise InputError(f"expected a 2-D grey image, got shape {img.shape}")
    r, c = float(centre_rc[0]), float(centre_rc[1])
    ri, ci = int(round(r)), int(round(c))
    u, h = lg_channels(channel_width(radius_px), (r - ri, c - ci))
    padded = np.pad(img, h, mode="edge")
    patch = padded[ri: ri + 2 * h + 1, ci: ci + 2 * h + 1]   # rows ri-h..ri+h of img
    if patch.shape != u.shape[1:]:
        raise InputError(f"lesion centre {centre_rc} lies outside the {img.shape} image")
    return np.tensordot(u, patch, axes=([1, 2], [0, 1]))


# ----------------------------------------------------------------------------- statistics
def hotelling_template(v1: np.ndarray, v0: np.ndarray) -> np.ndarray:
    """CHO template from channel responses of signal-present ``v1`` and -absent ``v0`` (n, N)."""
    v1, v0 = np.atleast_2d(v1), np.atleast_2d(v0)
    if len(v1) < 2 or len(v0) < 2:
        raise InputError("the observer needs at least 2 training images per class")
    s = 0.5 * (np.cov(v1, rowvar=False) + np.cov(v0, rowvar=False))
    s = np.atleast_2d(s)
    s = s + (RIDGE * max(float(np.trace(s)) / len(s), 1e-12)) * np.eye(len(s))
    return np.linalg.solve(s, v1.mean(0) - v0.mean(0))


def auc_empirical(t1: np.ndarray, t0: np.ndarray) -> float:
    """P(t1 > t0) + 0.5 P(t1 == t0) (Mann-Whitney), from ranks."""
    from scipy.stats import rankdata

    t1, t0 = np.asarray(t1, float), np.asarray(t0, float)
    ranks = rankdata(np.concatenate([t1, t0]))
    n1, n0 = len(t1), len(t0)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def dprime(t1: np.ndarray, t0: np.ndarray) -> float:
    var = 0.5 * (np.var(t1, ddof=1) + np.var(t0, ddof=1))
    diff = float(np.mean(t1) - np.mean(t0))
    if not var > 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def auc_from_dprime(d: float) -> float:
    """AUC of equal-variance Gaussian scores with detectability d': Phi(d'/sqrt 2)."""
    return 0.5 * (1.0 + math.erf(d / 2.0))


@dataclass
class ObserverResult:
    auc: float
    auc_lo: float
    auc_hi: float
    dprime: float
    n_pairs: int
    scores1: np.ndarray      # cross-validated scores, signal present (pair order)
    scores0: np.ndarray      # signal absent

    def as_dict(self, prefix: str = "task_") -> dict:
        return {f"{prefix}auc": self.auc, f"{prefix}auc_lo": self.auc_lo, f"{prefix}auc_hi": self.auc_hi,
                f"{prefix}dprime": self.dprime, f"{prefix}n_pairs": self.n_pairs}


def cross_validated_scores(v1: np.ndarray, v0: np.ndarray, folds: int = FOLDS,
                           groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every image from a template trained on the other folds. Case i (a pair) is in
    fold ``groups[i] % folds`` (default ``groups = 0..n-1``); give the view's pair number as the
    group when one view appears several times (trials), so a view never trains its own test."""
    v1, v0 = np.asarray(v1, float), np.asarray(v0, float)
    n = len(v1)
    if len(v0) != n:
        raise InputError(f"signal-present and -absent responses must pair up ({n} vs {len(v0)})")
    if folds < 2 or n < 2 * folds:
        raise InputError(f"need at least {2 * max(folds, 2)} pairs for {folds}-fold training/testing, got {n}")
    fold = (np.arange(n) if groups is None else np.asarray(groups, dtype=np.int64)) % folds
    if len(fold) != n:
        raise InputError(f"groups has {len(fold)} entries for {n} pairs")
    for f in range(folds):
        if (fold == f).sum() < 1 or (fold != f).sum() < 2:
            raise InputError(f"fold {f} of the observer's {folds}-fold split is too small")
    t1, t0 = np.empty(n), np.empty(n)
    for f in range(folds):
        test, train = fold == f, fold != f
        w = hotelling_template(v1[train], v0[train])
        # put every fold's scores on one scale before pooling them: origin halfway between the
        # training class means, unit standard deviation of the training scores
        mid = 0.5 * (v1[train].mean(0) + v0[train].mean(0))
        sd = math.sqrt(0.5 * (np.var(v1[train] @ w, ddof=1) + np.var(v0[train] @ w, ddof=1)))
        sd = sd if sd > 0 else 1.0
        t1[test], t0[test] = (v1[test] - mid) @ w / sd, (v0[test] - mid) @ w / sd
    return t1, t0


def bootstrap_aucs(t1: np.ndarray, t0: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``auc_empirical(t1[i], t0[i])`` for every row ``i`` of ``idx`` (replicates x n pair indices)
    in one go: with ``C[a, b] = [t1_a > t0_b] + 0.5 [t1_a == t0_b]`` and ``w`` a replicate's count
    of each pair, its AUC is ``w^T C w / n^2``. Every term is a multiple of 0.5, so the sums are
    exact in float64 and equal the rank formula's numerator bit for bit (tests check it)."""
    t1, t0 = np.asarray(t1, float), np.asarray(t0, float)
    idx = np.asarray(idx, dtype=np.int64)
    n_rep, n = idx.shape if idx.ndim == 2 else (0, len(t1))
    if n_rep == 0:
        return np.empty(0)
    c = (t1[:, None] > t0[None, :]) + 0.5 * (t1[:, None] == t0[None, :])
    w = np.zeros((n_rep, len(t1)))
    np.add.at(w, (np.repeat(np.arange(n_rep), n), idx.reshape(-1)), 1.0)
    return np.einsum("ra,ab,rb->r", w, c, w, optimize=True) / float(n * n)


def evaluate(v1: np.ndarray, v0: np.ndarray, folds: int = FOLDS, n_boot: int = N_BOOT, ci: float = CI,
             seed: int = 0, groups=None) -> ObserverResult:
    """CHO figures of merit from paired channel responses ``v1[i]``/``v0[i]`` (pair i = one view)."""
    t1, t0 = cross_validated_scores(v1, v0, folds, groups)
    auc = auc_empirical(t1, t0)
    rng = np.random.default_rng(seed)
    n = len(t1)
    # the same draws as one rng.integers(0, n, n) per replicate (the reference loop: auc_empirical
    # of t1[idx], t0[idx]); each replicate's AUC from the pairs' multiplicities, see bootstrap_aucs
    idx = np.stack([rng.integers(0, n, n) for _ in range(n_boot)]) if n_boot else np.empty((0, n), np.int64)
    if np.isfinite(t1).all() and np.isfinite(t0).all():
        boots = bootstrap_aucs(t1, t0, idx)
    else:   # non-finite scores: the rank formula's own NaN handling, replicate by replicate
        boots = np.array([auc_empirical(t1[i], t0[i]) for i in idx])
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(boots, [alpha, 1.0 - alpha]) if n_boot else (math.nan, math.nan)
    return ObserverResult(auc=auc, auc_lo=float(lo), auc_hi=float(hi), dprime=dprime(t1, t0),
                          n_pairs=n, scores1=t1, scores0=t0)


def paired_difference(a: tuple, b: tuple, n_boot: int = N_BOOT, ci: float = CI, seed: int = 0) -> dict:
    """AUC(a) - AUC(b) of two methods scored on the same pairs (``a`` and ``b``: (scores1,
    scores0), pair i the same view in both) with a paired bootstrap: each replicate resamples the
    pairs once for both methods, so what the two share (the views, their anatomy) cancels. ->
    dict(auc_a, auc_b, diff, diff_lo, diff_hi, p_not_above: the share of replicates with diff <= 0)."""
    (t1a, t0a), (t1b, t0b) = ([np.asarray(x, float) for x in s] for s in (a, b))
    n = len(t1a)
    if not (len(t0a) == len(t1b) == len(t0b) == n) or n < 2:
        raise InputError(f"paired AUC difference: the two methods' scores must cover the same pairs (>= 2), "
                         f"got {len(t1a)}/{len(t0a)} and {len(t1b)}/{len(t0b)}")
    if not all(np.isfinite(x).all() for x in (t1a, t0a, t1b, t0b)):
        raise InputError("paired AUC difference: non-finite scores")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, (int(n_boot), n))
    diffs = bootstrap_aucs(t1a, t0a, idx) - bootstrap_aucs(t1b, t0b, idx)
    auc_a, auc_b = auc_empirical(t1a, t0a), auc_empirical(t1b, t0b)
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(diffs, [alpha, 1.0 - alpha])
    return dict(auc_a=auc_a, auc_b=auc_b, diff=auc_a - auc_b, diff_lo=float(lo), diff_hi=float(hi),
                p_not_above=float(np.mean(diffs <= 0.0)), n_pairs=n)


def evaluate_images(present, absent, nodules, **kw) -> ObserverResult:
    """``evaluate`` from images: ``present[i]``/``absent[i]`` of pair i, ``nodules[i]`` with
    ``centre_px`` and ``radius_px`` (dicts as in nodules.json)."""
    v1 = np.stack([channel_responses(img, n["centre_px"], n["radius_px"]) for img, n in zip(present, nodules)])
    v0 = np.stack([channel_responses(img, n["centre_px"], n["radius_px"]) for img, n in zip(absent, nodules)])
    return evaluate(v1, v0, **kw)
