"""Adaptive multi-symbol arithmetic coder for the rate-index map (side info).

Each cell's rate index is predicted from its causal neighbours with the LOCO-I / JPEG-LS median
edge detector, and the zig-zag residual is coded with an adaptive frequency model (all counts
start at 1, a coded symbol's count grows by ``INCREMENT``). 32-bit Witten-Neal-Cleary coder
with pending bits; the two flush bits make any continuation (padding, following data) decode
correctly, so the code can be followed directly by other side-info fields.
"""
from __future__ import annotations

import numpy as np

from ..errors import MedJSCCError

_PREC = 32
_TOP = (1 << _PREC) - 1
_HALF = 1 << (_PREC - 1)
_QUARTER = 1 << (_PREC - 2)
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
    bits: list[int] = []
    low, high, pending = 0, _TOP, 0

    def emit(bit):
        nonlocal pending
        bits.append(bit)
        bits.extend([1 - bit] * pending)
        pending = 0

    for r in range(h):
        for c in range(w):
            s = _zigzag(int(g[r, c]) - _predict(g, r, c))
            lo, hi, tot = model.cum(s)
            span = high - low + 1
            high = low + span * hi // tot - 1
            low = low + span * lo // tot
            while True:
                if high < _HALF:
                    emit(0)
                elif low >= _HALF:
                    emit(1)
                    low -= _HALF
                    high -= _HALF
                elif low >= _QUARTER and high < _HALF + _QUARTER:
                    pending += 1
                    low -= _QUARTER
                    high -= _QUARTER
                else:
                    break
                low, high = 2 * low, 2 * high + 1
            model.update(s)
    pending += 1
    emit(0 if low < _QUARTER else 1)
    return bits   # any continuation after the two flush bits decodes correctly


def decode_map(bits, shape, n_levels: int):
    """Decode ``encode_map`` bits; returns (grid, number of bits consumed)."""
    h, w = shape
    bits = list(bits)
    n = len(bits)
    pos = 0

    def next_bit():
        nonlocal pos
        b = bits[pos] if pos < n else 0
        pos += 1
        return b

    model = _Freq(2 * n_levels - 1)
    g = np.zeros((h, w), dtype=np.int64)
    low, high, value = 0, _TOP, 0
    for _ in range(_PREC):
        value = (value << 1) | next_bit()
    for r in range(h):
        for c in range(w):
            span = high - low + 1
            tot = sum(model.f)
            target = ((value - low + 1) * tot - 1) // span
            acc, s = 0, 0
            while s < len(model.f) and acc + model.f[s] <= target:
                acc += model.f[s]
                s += 1
            if s >= len(model.f):
                raise MedJSCCError("rate-map arithmetic code is corrupted")
            lo, hi = acc, acc + model.f[s]
            high = low + span * hi // tot - 1
            low = low + span * lo // tot
            v = _predict(g, r, c) + _unzigzag(s)
            if not 0 <= v < n_levels:
                raise MedJSCCError("rate-map arithmetic code decodes to an invalid level")
            g[r, c] = v
            while True:
                if high < _HALF:
                    pass
                elif low >= _HALF:
                    low -= _HALF
                    high -= _HALF
                    value -= _HALF
                elif low >= _QUARTER and high < _HALF + _QUARTER:
                    low -= _QUARTER
                    high -= _QUARTER
                    value -= _QUARTER
                else:
                    break
                low, high = 2 * low, 2 * high + 1
                value = (value << 1) | next_bit()
            model.update(s)
    return g
