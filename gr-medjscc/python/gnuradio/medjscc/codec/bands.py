"""The analog layer's radial DCT bands (``codec/hybrid.py``), shared with the detectability
weights (``codec/detectability.py``). Pure numpy."""
from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import InputError


@functools.lru_cache(maxsize=16)
def band_map(shape: tuple, n_bands: int):
    """-> (labels (H*W,) band of each DCT coefficient, radius (H*W,)). Band 0 holds the lowest
    frequencies (radius < 1.5: DC and its 3 neighbours), the rest are rings with log-spaced edges
    from 1.5 to the corner (the residual's energy falls roughly as a power of the radius)."""
    if n_bands < 2:
        raise InputError(f"hybrid: at least 2 bands, got {n_bands}")
    h, w = shape
    u, v = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    r = np.sqrt(u ** 2 + v ** 2).ravel()
    edges = np.concatenate([[0.0], np.geomspace(1.5, math.hypot(h, w) + 1.0, n_bands)])
    labels = np.clip(np.searchsorted(edges, r, side="right") - 1, 0, n_bands - 1)
    return labels.astype(np.int64), r


@functools.lru_cache(maxsize=16)
def band_members(shape: tuple, n_bands: int):
    """Per band, its coefficient indices in increasing radius (ties: raster order)."""
    labels, r = band_map(shape, n_bands)
    order = np.lexsort((np.arange(r.size), r))
    return [order[labels[order] == b] for b in range(n_bands)]
