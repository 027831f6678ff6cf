"""Gray-mapped BPSK / QPSK / 16-QAM / 64-QAM / 256-QAM with exact and max-log soft demapping.

Constellations have unit average power (project convention, ``snr.py``): the received symbol is
``y = h x + n`` with complex noise variance ``N0 = 10**(-snr_db/10)``. Square QAM is two
independent Gray-coded PAMs (first half of each symbol's bits on I, second half on Q, as in
802.11), so demapping is done per axis with real noise variance ``N0 / (2 |h|^2)`` after
zero-forcing by the known channel ``h`` (equivalent to the exact LLR with CSI).
LLR convention: ``log P(b=0) / P(b=1)``.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputError

# name -> bits per complex symbol
MODULATIONS = {"bpsk": 1, "qpsk": 2, "16qam": 4, "64qam": 6, "256qam": 8}


def bits_per_symbol(modulation: str) -> int:
    try:
        return MODULATIONS[modulation]
    except KeyError:
        raise InputError(f"unknown modulation {modulation!r}; known: {list(MODULATIONS)}") from None


def _pam(bits_per_axis: int, scale: float):
    """Levels (L,) and their Gray labels as a (L, bits_per_axis) 0/1 table (MSB first)."""
    n_levels = 2 ** bits_per_axis
    levels = (n_levels - 1 - 2 * np.arange(n_levels)) * scale  # label 0 on the positive side (BPSK 0 -> +1)
    gray = np.arange(n_levels) ^ (np.arange(n_levels) >> 1)
    labels = (gray[:, None] >> np.arange(bits_per_axis - 1, -1, -1)[None, :]) & 1
    return levels.astype(np.float64), labels.astype(np.uint8)


def _axis_setup(modulation: str):
    bps = bits_per_symbol(modulation)
    if bps == 1:
        return 1, 1.0  # BPSK: +-1 on I only
    per_axis = bps // 2
    n_levels = 2 ** per_axis
    scale = 1.0 / math.sqrt(2.0 * (n_levels ** 2 - 1) / 3.0)
    return per_axis, scale


def modulate(bits: np.ndarray, modulation: str) -> np.ndarray:
    """0/1 bits (length multiple of bits/symbol) -> complex64 unit-power symbols."""
    bps = bits_per_symbol(modulation)
    bits = np.asarray(bits, dtype=np.uint8).reshape(-1)
    if bits.size % bps:
        raise ValueError(f"{bits.size} bits is not a multiple of {bps} ({modulation})")
    per_axis, scale = _axis_setup(modulation)
    levels, labels = _pam(per_axis, scale)
    # label -> level lookup
    weights = 1 << np.arange(per_axis - 1, -1, -1)
    label_value = labels @ weights
    level_of_label = np.empty(2 ** per_axis)
    level_of_label[label_value] = levels
    groups = bits.reshape(-1, bps)
    i_val = groups[:, :per_axis] @ weights
    if bps == 1:
        return level_of_label[i_val].astype(np.complex64)
    q_val = groups[:, per_axis:] @ weights
    return (level_of_label[i_val] + 1j * level_of_label[q_val]).astype(np.complex64)


def _axis_llr(y: np.ndarray, var: np.ndarray, levels, labels, exact: bool) -> np.ndarray:
    """LLRs (N, bits_per_axis) of real PAM observations y with per-sample noise variance var."""
    metric = -((y[:, None] - levels[None, :]) ** 2) / (2.0 * var[:, None])  # (N, L)
    out = np.empty((y.size, labels.shape[1]))
    for b in range(labels.shape[1]):
        zero, one = labels[:, b] == 0, labels[:, b] == 1
        if exact:
            out[:, b] = _logsumexp(metric[:, zero]) - _logsumexp(metric[:, one])
        else:
            out[:, b] = metric[:, zero].max(axis=1) - metric[:, one].max(axis=1)
    return out


def _logsumexp(a):
    mx = a.max(axis=1)
    return mx + np.log(np.exp(a - mx[:, None]).sum(axis=1))


def demodulate_llr(y: np.ndarray, modulation: str, noise_var: float, h: np.ndarray | None = None,
                   exact: bool = False) -> np.ndarray:
    """Soft demapping: received symbols -> bit LLRs (float32, bits in the order ``modulate`` used).

    ``noise_var`` is the complex noise variance N0 (scalar or per symbol); ``h`` (optional, per symbol) is the known
    channel gain. ``exact=True`` uses log-sum-exp over all points, otherwise max-log.
    """
    y = np.asarray(y, dtype=np.complex128).reshape(-1)
    if h is not None:
        h = np.asarray(h, dtype=np.complex128).reshape(-1)
        gain2 = np.maximum(np.abs(h) ** 2, 1e-12)
        y = y * np.conj(h) / gain2
        var = np.asarray(noise_var, dtype=np.float64) / (2.0 * gain2)
    else:
        var = np.broadcast_to(np.asarray(noise_var, dtype=np.float64) / 2.0, y.shape)
    bps = bits_per_symbol(modulation)
    per_axis, scale = _axis_setup(modulation)
    levels, labels = _pam(per_axis, scale)
    llr_i = _axis_llr(y.real, var, levels, labels, exact)
    if bps == 1:
        return llr_i.reshape(-1).astype(np.float32)
    llr_q = _axis_llr(y.imag, var, levels, labels, exact)
    return np.concatenate([llr_i, llr_q], axis=1).reshape(-1).astype(np.float32)


def theoretical_ber(modulation: str, snr_db: float) -> float:
    """Exact AWGN bit error rate of the Gray-mapped square constellations (Es/N0 = snr_db)."""
    from scipy.special import erfc

    def qf(x):
        return 0.5 * erfc(x / math.sqrt(2.0))

    es_n0 = 10 ** (snr_db / 10)
    if modulation == "bpsk":
        return qf(math.sqrt(2 * es_n0))
    if modulation == "qpsk":
        return qf(math.sqrt(es_n0))
    if modulation == "16qam":
        d = math.sqrt(es_n0 / 5)
        return (3 * qf(d) + 2 * qf(3 * d) - qf(5 * d)) / 4
    if modulation == "64qam":
        d = math.sqrt(es_n0 / 21)
        # per-axis 8-PAM Gray: average of the three bit positions' exact error probabilities
        terms = (7 * qf(d) + 6 * qf(3 * d) - qf(5 * d) + qf(9 * d) - qf(13 * d))
        return terms / 12
    raise InputError(f"unknown modulation {modulation!r}")
