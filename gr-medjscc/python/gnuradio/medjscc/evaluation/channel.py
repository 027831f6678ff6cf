"""Symbol-level channels of the sweep, seeded so every method sees the same draws.

The channel for (image, SNR, trial) comes from ``channel_rng``; fading gains and noise are
drawn from two independent streams, each filled in order, so the first N noise samples are the
same whatever N a method transmits (a method that sends fewer symbols sees a prefix of the same
noise). Models (all with perfect CSI at the receiver, project SNR convention of ``snr.py``):

* ``awgn``: ``y = x + n``.
* ``rayleigh``: alias of ``rayleigh_iid`` (fast flat fading, ``h ~ CN(0, 1)`` i.i.d. per symbol).
* ``multipath``: the symbol-level view of OFDM over a frequency-selective channel: symbols fill
  the 48 data subcarriers of a 64-point FFT; each frame of 32 OFDM symbols (1536 symbols) sees
  one 8-tap exponential-power-delay-profile Rayleigh channel (taps normalised to unit energy),
  i.e. block fading in time, correlated across subcarriers.
* every named model of ``channel_models`` (``rayleigh_block256``, ``rayleigh_block1536``,
  ``rayleigh_frame``, ...), with the coherence it states.
"""
from __future__ import annotations

import zlib

import numpy as np

from .. import channel_models as cm
from .. import snr as snr_mod
from ..errors import InputError

CHANNELS = cm.names("sweep")


def channel_seed(base_seed: int, image_name: str, snr_db: float, trial: int) -> list[int]:
    """Seed words for (image, SNR, trial): independent of the method and of the process."""
    return [int(base_seed) & 0xFFFFFFFF, zlib.crc32(str(image_name).encode()),
            int(round(float(snr_db) * 1000)) & 0xFFFFFFFF, int(trial)]


def _streams(seed_words):
    ss = np.random.SeedSequence(seed_words)
    fading_ss, noise_ss = ss.spawn(2)
    return np.random.default_rng(fading_ss), np.random.default_rng(noise_ss)


def _cn(rng, n):
    """n samples of CN(0, 1), drawn as (n, 2) so a longer draw extends a shorter one."""
    pairs = rng.standard_normal((n, 2))
    return (pairs[:, 0] + 1j * pairs[:, 1]) / np.sqrt(2.0)


def gains(kind: str, n: int, rng) -> np.ndarray | None:
    """Fading gains of ``n`` symbols for channel ``kind`` (``channel_models``; None for AWGN)."""
    return cm.gains(cm.resolve(kind, "sweep"), n, rng)


def transmit(symbols: np.ndarray, kind: str, snr_db: float, seed_words) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Send complex symbols through the channel: returns (y, h or None, N0)."""
    cm.resolve(kind, "sweep")
    x = np.asarray(symbols, dtype=np.complex128).reshape(-1)
    fading_rng, noise_rng = _streams(seed_words)
    h = gains(kind, x.size, fading_rng)
    n0 = snr_mod.noise_variance(snr_db)
    noise = _cn(noise_rng, x.size) * np.sqrt(n0)
    y = (x if h is None else h * x) + noise
    return y, h, n0


def mmse_equalise(y: np.ndarray, h: np.ndarray | None, n0: float) -> np.ndarray:
    """Per-symbol MMSE estimate of x for analog (JSCC) receivers; identity on AWGN."""
    if h is None:
        return y
    return np.conj(h) * y / (np.abs(h) ** 2 + n0)


def capacity_bits_per_symbol(kind: str, snr_db: float) -> float:
    """Shannon capacity per complex channel use: AWGN log2(1+SNR); ergodic capacity
    E[log2(1 + |h|^2 SNR)] with h ~ CN(0,1) for the fading channels (CSI at the receiver)."""
    if kind == "awgn":
        return snr_mod.capacity_bits_per_symbol(snr_db)
    if kind in CHANNELS and cm.resolve(kind, "sweep").fading != "none":
        from scipy.special import exp1

        g = 10 ** (snr_db / 10)
        return float(np.exp(1.0 / g) * exp1(1.0 / g) / np.log(2.0))
    raise InputError(f"unknown channel {kind!r}; choose one of {', '.join(CHANNELS)}")
