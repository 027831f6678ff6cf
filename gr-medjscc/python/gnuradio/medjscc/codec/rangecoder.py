"""Adaptive multi-symbol arithmetic coder for the rate-index map (side info).

Each cell's rate index is predicted from its causal neighbours with the LOCO-I / JPEG-LS median
edge detector, and the zig-zag residual is coded with an adaptive frequency model (all counts
start at 1, a coded symbol's count grows by ``INCREMENT``). Coded with the shared
``arithcoder`` engine; its two flush bits make any continuation (padding, following data) decode
correctly, so the code can be followed directly by other side-info fields.
"""
from __future__ import annotations

import numpy as np

from ..arithcoder import ArithmeticDecoder, ArithmeticEncoder
from ..errors import MedJSCCError

INCREMENT = 6


def _predict(g: np.ndarray, r: int, c: int) -> int:
    a = int(g[r, c - 1]) if c > 0 else None          # west
    b = int(g[r - 1, c]) if r > 0 else None          # north
    if a is None and b is None:
        return 0
    if a is None:
        return b
    if b is None:
        return a
    d = int(g[r - 1, c - 1])                         # north-west
    if d >= max(a, b):
        return min(a, b)
    if d <= min(a, b):
        return max(a, b)
    return a + b - d


def _zigzag(v: int) -> int:
    return 2 * v if v >= 0 else -2 * v - 1


def _unzigzag(u: int) -> int:
    return u // 2 if u % 2 == 0 else -(u + 1) // 2


class _Freq:
    def __init__(self, n: int):
        self.f = [1] * n

    def cum(self, s: int):
        lo = sum(self.f[:s])
        return lo, lo + self.f[s], sum(self.f)

    def update(self, s: int):
        self.f[s] += INCREMENT


def encode_map(grid: np.ndarray, n_levels: int) -> list[int]:
    """Return the code as a list of bits."""
    g = np.asarray(grid, dtype=np.int64)
    h, w = g.shape
    model = _Freq(2 * n_levels - 1)
    coder = ArithmeticEncoder()
    for r in range(h):
        for c in range(w):
            s = _zigzag(int(g[r, c]) - _predict(g, r, c))
            coder.encode(*model.cum(s))
            model.update(s)
    return coder.finish()   # any continuation after the two flush bits decodes correctly


def decode_map(bits, shape, n_levels: int):
    """Decode ``encode_map`` bits; returns the grid."""
    h, w = shape
    model = _Freq(2 * n_levels - 1)
    coder = ArithmeticDecoder(bits)
    g = np.zeros((h, w), dtype=np.int64)
    for r in range(h):
        for c in range(w):
            tot = sum(model.f)
            target = coder.target(tot)
            acc, s = 0, 0
            while s < len(model.f) and acc + model.f[s] <= target:
                acc += model.f[s]
                s += 1
            if s >= len(model.f):
                raise MedJSCCError("rate-map arithmetic code is corrupted")
            coder.consume(acc, acc + model.f[s], tot)
            v = _predict(g, r, c) + _unzigzag(s)
            if not 0 <= v < n_levels:
                raise MedJSCCError("rate-map arithmetic code decodes to an invalid level")
            g[r, c] = v
            model.update(s)
    return g
