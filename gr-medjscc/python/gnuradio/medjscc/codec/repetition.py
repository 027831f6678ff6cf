"""Analog repetition of the strongest codec symbols (a link option, signalled in the side info).

The codec emits its symbols strong components first (channel-major). Losing one of an image's
~3 OFDM frames erases a third of *every* component, and the strong ones carry most of the image:
ROI-PSNR falls by ~8 dB. Sending the first ``k`` symbols twice, paid for out of the same symbol
budget (the codec encodes fewer unique symbols), protects them:

* each copy sits right after its original, so the OFDM interleaver (which deals consecutive
  symbols to different frames and shuffles them over the subcarriers) puts the two copies in
  different frames and on different subcarriers: a lost frame or a faded one leaves the other;
* when both arrive the receiver combines them (maximum-ratio, per-symbol noise variance): the
  strong components gain 3 dB, which is worth more than the unique symbols given up.

The repeated share is an 8-bit code ``c``: ``k = n * c // 256`` of ``n`` unique symbols. Pure numpy.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError, MedJSCCError

CODE_STEPS = 256
MAX_CODE = 255


def code_for_fraction(fraction: float) -> int:
    """8-bit repeat code of a repeated share (0 = off, up to 255/256 of the unique symbols)."""
    f = float(fraction)
    if not (0.0 <= f < 1.0):
        raise MedJSCCError(f"repeat fraction must be in [0, 1), got {fraction!r}")
    return int(min(round(f * CODE_STEPS), MAX_CODE))


def fraction_of_code(code: int) -> float:
    return int(code) / CODE_STEPS


def repeat_count(n_unique: int, code: int) -> int:
    """Symbols sent twice among ``n_unique``."""
    return int(n_unique) * int(code) // CODE_STEPS


def sent_count(n_unique: int, code: int) -> int:
    return int(n_unique) + repeat_count(n_unique, code)


def unique_budget(n_sent: int, code: int) -> int:
    """The most unique symbols whose repeated stream fits ``n_sent`` channel uses."""
    n = int(n_sent) * CODE_STEPS // (CODE_STEPS + int(code))      # a lower bound, then grow
    while sent_count(n + 1, code) <= n_sent:
        n += 1
    return n


def unique_count(n_sent: int, code: int) -> int:
    """``n`` with ``sent_count(n, code) == n_sent``; InputError when no ``n`` gives that length
    (a truncated or padded stream)."""
    n = unique_budget(n_sent, code)
    if sent_count(n, code) != int(n_sent):
        raise InputError(f"{n_sent} symbols cannot be a stream with repeat code {code} "
                         f"({n} unique symbols send {sent_count(n, code)})")
    return n


def _positions(n_unique: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Stream positions of every unique symbol, and of the copies of the first ``k``."""
    i = np.arange(n_unique)
    first = np.where(i < k, 2 * i, i + k)
    return first, 2 * np.arange(k) + 1


def spread(symbols, code: int) -> np.ndarray:
    """The sent stream: symbol i (< k) followed by its copy, then the rest in order."""
    s = np.asarray(symbols).reshape(-1)
    k = repeat_count(s.size, code)
    first, copy = _positions(s.size, k)
    out = np.empty(s.size + k, dtype=s.dtype)
    out[first] = s
    out[copy] = s[:k]
    return out


def combine(received, code: int, erased=None, inv_snr=None):
    """Received stream -> ``(symbols, erased, inv_snr, copies)`` of the unique symbols
    (``copies``: how many copies of each arrived).

    Without ``inv_snr`` the symbols are taken as unbiased (y = x + n, equal noise): the copies
    that arrived are averaged and the returned ``inv_snr`` is None. With ``inv_snr`` (per-symbol
    1/SNR_i, inf where lost) they are taken as MMSE estimates y = x / (1 + v) + noise, as the
    OFDM receiver gives: each is unbiased, the copies are weighted by 1/v (maximum ratio), and
    the result is MMSE-scaled again with its combined v = 1 / sum(1 / v_i)."""
    y = np.asarray(received).reshape(-1)
    n = unique_count(y.size, code)
    k = repeat_count(n, code)
    first, copy = _positions(n, k)
    er = np.zeros(y.size, bool) if erased is None else np.asarray(erased, bool).reshape(-1)
    if er.size != y.size:
        raise InputError(f"erased mask has {er.size} entries for {y.size} symbols")
    if inv_snr is None:
        got = (~er).astype(np.float64)
        acc = np.where(er, 0, y).astype(np.complex128)
        num = acc[first].copy()
        cnt = got[first].copy()
        num[:k] += acc[copy]
        cnt[:k] += got[copy]
        out = np.where(cnt > 0, num / np.maximum(cnt, 1), 0)
        return out.astype(np.complex64), cnt == 0, None, cnt
    v = np.asarray(inv_snr, np.float64).reshape(-1)
    if v.size != y.size:
        raise InputError(f"inv_snr has {v.size} entries for {y.size} symbols")
    v = np.where(er, np.inf, v)
    w = np.where(np.isfinite(v), 1.0 / np.maximum(v, 1e-12), 0.0)     # 1/v: 0 where lost
    unbiased = np.where(w > 0, y * (1.0 + np.where(np.isfinite(v), v, 0.0)), 0)
    num = (w * unbiased)[first].astype(np.complex128)
    den = w[first].copy()
    num[:k] += (w * unbiased)[copy]
    den[:k] += w[copy]
    lost = den == 0
    v_out = np.where(lost, np.inf, 1.0 / np.where(lost, 1.0, den))
    x = np.where(lost, 0, num / np.where(lost, 1.0, den) / (1.0 + np.where(lost, 0.0, v_out)))
    cnt = (w[first] > 0).astype(np.float64)
    cnt[:k] += w[copy] > 0
    return x.astype(np.complex64), lost, v_out, cnt
