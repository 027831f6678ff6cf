"""IQ-level channel presets for the OFDM link (numpy).

Noise calibration: the complex noise added per *sample* has variance
``10**(-snr_db/10) * fft_len / n_occupied`` so that, after the receiver's FFT scaling (see
``params``), the noise per data subcarrier is ``N0 = 10**(-snr_db/10)`` while unit-power data
symbols keep unit power: Es/N0 on the data subcarriers equals ``snr_db`` (project convention).
Multipath taps and fading gains have unit average power, so the *average* data-subcarrier
Es/N0 is still ``snr_db``.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import MedJSCCError
from .params import OfdmParams

PRESETS = ("awgn", "multipath", "rayleigh")
MULTIPATH_TAPS = np.array([1.0, 0.5j, 0.25])          # 3-tap, normalised to unit energy below


def multipath_taps(taps=None) -> np.ndarray:
    h = np.asarray(MULTIPATH_TAPS if taps is None else taps, np.complex128)
    return h / math.sqrt(float(np.sum(np.abs(h) ** 2)))


def _rayleigh_fast(n: int, doppler: float, rng, n_paths: int = 16) -> np.ndarray:
    """Clarke/Jakes sum-of-sinusoids gain, unit average power; doppler normalised to the sample rate."""
    alpha = (2 * math.pi * (np.arange(n_paths) + rng.random(n_paths))) / n_paths
    phi = rng.uniform(0, 2 * math.pi, n_paths)
    t = np.arange(n)
    out = np.zeros(n, np.complex128)
    for a, ph in zip(alpha, phi):
        out += np.exp(1j * (2 * math.pi * doppler * math.cos(a) * t + ph))
    return out / math.sqrt(n_paths)


_FD_HALF = 16


def _frac_delay_filter(d: float) -> np.ndarray:
    """Windowed-sinc FIR delaying by d samples (plus _FD_HALF, removed by the caller), unit DC gain."""
    n = np.arange(-_FD_HALF, _FD_HALF + 1)
    h = np.sinc(n - d) * np.blackman(2 * _FD_HALF + 1)
    return (h / h.sum()).astype(np.complex64)


def _phasor(freq: float, n: int, block: int = 4096) -> np.ndarray:
    """exp(j 2 pi freq k), k < n, as complex64 via block x offset products (fast, accurate)."""
    n_blocks = -(-n // block)
    inner = np.exp(2j * np.pi * freq * np.arange(block))
    outer = np.exp(2j * np.pi * freq * block * np.arange(n_blocks))
    return (outer[:, None] * inner[None, :]).reshape(-1)[:n].astype(np.complex64)


def apply_iq_channel(iq, preset: str = "awgn", snr_db: float = 10.0, cfo: float = 0.0, delay: int = 0,
                     rng: np.random.Generator | None = None, params: OfdmParams | None = None,
                     taps=None, fading: str = "block", doppler: float = 1e-4, tail: int = 0,
                     frac_delay: float = 0.0, return_info: bool = False):
    """Pass IQ through ``preset`` then add calibrated AWGN.

    cfo: carrier frequency offset in subcarrier spacings. delay: integer samples of noise-only
    lead-in (timing offset); frac_delay: extra fractional delay in [0, 1) samples (windowed-sinc
    interpolator, band edges of the 52/64 occupied band are passed); tail: noise-only samples appended. For ``rayleigh``: ``fading="block"``
    draws one CN(0,1) gain for the whole call (call once per frame for block fading), ``"fast"``
    uses a Jakes process with normalised ``doppler``. ``taps`` overrides the multipath taps.
    Returns complex64 IQ (and an info dict with the applied taps/gains if ``return_info``).
    """
    if preset not in PRESETS:
        raise MedJSCCError(f"channel preset must be one of {PRESETS}, got {preset!r}")
    if fading not in ("block", "fast"):
        raise MedJSCCError(f"fading must be 'block' or 'fast', got {fading!r}")
    if int(delay) < 0 or int(tail) < 0:
        raise MedJSCCError("delay and tail must be >= 0 samples")
    if not (0.0 <= float(frac_delay) < 1.0):
        raise MedJSCCError(f"frac_delay must be in [0, 1) samples, got {frac_delay}")
    p = params or OfdmParams()
    rng = rng if rng is not None else np.random.default_rng()
    x = np.asarray(iq, np.complex64).reshape(-1)
    info: dict = {"preset": preset, "snr_db": float(snr_db), "cfo": float(cfo), "delay": int(delay)}
    if preset == "multipath":
        h = multipath_taps(taps)
        x = np.convolve(x, h.astype(np.complex64))[: x.size]
        info["taps"] = h
    elif preset == "rayleigh":
        if fading == "block":
            g = (rng.standard_normal() + 1j * rng.standard_normal()) / math.sqrt(2)
            x = x * np.complex64(g)
            info["taps"] = np.array([g])
        else:
            g = _rayleigh_fast(x.size, doppler, rng)
            x = x * g.astype(np.complex64)
            info["gains"] = g
    else:
        info["taps"] = np.array([1.0 + 0j])
    if frac_delay:
        x = np.convolve(x, _frac_delay_filter(float(frac_delay)))[_FD_HALF: _FD_HALF + x.size].astype(np.complex64)
        info["frac_delay"] = float(frac_delay)
    x = np.concatenate([np.zeros(int(delay), np.complex64), x, np.zeros(int(tail), np.complex64)])
    if cfo:
        x = x * _phasor(float(cfo) / p.fft_len, x.size)
    sigma = math.sqrt(p.time_noise_variance(snr_db) / 2.0)
    noise = rng.standard_normal(2 * x.size, dtype=np.float32).view(np.complex64)   # re, im interleaved
    noise *= np.float32(sigma)
    y = x + noise
    return (y, info) if return_info else y
