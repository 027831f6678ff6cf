"""Symbol allocation: how many complex channel symbols each latent position gets.

Variable length (NTSCC-style): positions are grouped into ``block`` x ``block`` cells of the
latent grid (one rate index per cell keeps the side info small); cell c gets
``k_c = L[floor_level(eta * score_c)]`` symbols per position, with ``score`` = mean estimated
bits per position x ROI weight and ``L`` a short level table. ``eta`` is solved per image by
bisection so the payload meets its target; a greedy pass then upgrades single cells to close the
last gap (the result never exceeds the target).

Fixed length: every position gets ``n // P`` symbols, the first ``n % P`` positions (raster
order) one more, so any target is met exactly; the receiver recomputes this from the symbol count.
"""
from __future__ import annotations

import numpy as np

from ..errors import MedJSCCError

DEFAULT_LEVELS = (0, 1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64)


def block_grid(latent_hw, block: int) -> tuple[int, int]:
    h, w = latent_hw
    return -(-h // block), -(-w // block)


def block_sizes(latent_hw, block: int) -> np.ndarray:
    """Number of latent positions in each allocation cell (edge cells may be smaller)."""
    h, w = latent_hw
    bh, bw = block_grid(latent_hw, block)
    rows = np.minimum(block, h - np.arange(bh) * block)
    cols = np.minimum(block, w - np.arange(bw) * block)
    return np.outer(rows, cols)


def pool_to_blocks(values: np.ndarray, block: int, reduce="mean") -> np.ndarray:
    """Reduce an (h, w) map to allocation cells (mean or max over each cell)."""
    h, w = values.shape
    bh, bw = block_grid((h, w), block)
    out = np.zeros((bh, bw), dtype=np.float64)
    for i in range(bh):
        for j in range(bw):
            cell = values[i * block:(i + 1) * block, j * block:(j + 1) * block]
            out[i, j] = cell.max() if reduce == "max" else cell.mean()
    return out


def expand_blocks(cell_values: np.ndarray, latent_hw, block: int) -> np.ndarray:
    h, w = latent_hw
    return np.repeat(np.repeat(cell_values, block, axis=0), block, axis=1)[:h, :w]


def _levels_for(scaled: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Index of the largest level <= scaled value (floor onto the level table)."""
    return np.clip(np.searchsorted(levels, scaled, side="right") - 1, 0, len(levels) - 1)


def allocate_variable(score: np.ndarray, sizes: np.ndarray, n_target: int, levels=DEFAULT_LEVELS,
                      iterations: int = 60) -> np.ndarray:
    """Rate index per allocation cell so that sum(levels[idx] * sizes) <= n_target, as close as
    the level table allows. ``score`` >= 0 per cell (higher = more symbols)."""
    lv = np.asarray(levels, dtype=np.float64)
    score = np.maximum(np.asarray(score, dtype=np.float64), 1e-9)
    sizes = np.asarray(sizes, dtype=np.float64)
    capacity = float((lv[-1] * sizes).sum())
    if n_target < 0 or n_target > capacity:
        raise MedJSCCError(f"payload target {n_target} symbols outside 0..{int(capacity)}")

    def total(idx):
        return float((lv[idx] * sizes).sum())

    lo, hi = -30.0, 30.0   # log2(eta) bracket
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if total(_levels_for(score * 2.0 ** mid, lv)) <= n_target:
            lo = mid
        else:
            hi = mid
    idx = _levels_for(score * 2.0 ** lo, lv)
    # Greedy top-up: upgrade cells one level at a time, most under-served (score per symbol)
    # first, while the total stays within the target.
    budget = n_target - total(idx)
    flat_idx, flat_score, flat_size = idx.reshape(-1), score.reshape(-1), sizes.reshape(-1)
    while budget > 0:
        can = flat_idx < len(lv) - 1
        cost = np.where(can, (lv[np.minimum(flat_idx + 1, len(lv) - 1)] - lv[flat_idx]) * flat_size, np.inf)
        fits = cost <= budget
        if not fits.any():
            break
        priority = np.where(fits, flat_score / (lv[flat_idx] + 1.0), -np.inf)
        c = int(np.argmax(priority))
        flat_idx[c] += 1
        budget -= cost[c]
    return flat_idx.reshape(idx.shape)


def symbols_per_position(rate_idx: np.ndarray, latent_hw, block: int, levels=DEFAULT_LEVELS) -> np.ndarray:
    lv = np.asarray(levels, dtype=np.int64)
    return expand_blocks(lv[rate_idx], latent_hw, block)


def add_remainder(kmap: np.ndarray, extra: int, k_max: int) -> np.ndarray:
    """Spread ``extra`` symbols left over by the level table as +1 on the first positions
    (raster order) that are below ``k_max``. The receiver repeats this from the symbol count,
    so it costs no side info and lets the payload meet its target exactly."""
    flat = kmap.reshape(-1).copy()
    room = int((k_max - flat).sum())
    if extra < 0 or extra > room:
        raise MedJSCCError(f"cannot place {extra} remainder symbols (room for {room})")
    while extra > 0:   # round-robin: +1 per free position per pass
        free = np.flatnonzero(flat < k_max)[:extra]
        flat[free] += 1
        extra -= free.size
    return flat.reshape(kmap.shape)


def allocate_fixed(n_target: int, latent_hw, k_max: int) -> np.ndarray:
    h, w = latent_hw
    p = h * w
    if n_target < 0 or n_target > k_max * p:
        raise MedJSCCError(f"payload target {n_target} symbols outside 0..{k_max * p}")
    base, rem = divmod(int(n_target), p)
    k = np.full(p, base, dtype=np.int64)
    k[:rem] += 1
    return k.reshape(h, w)
