"""The project's one SNR / bandwidth convention. Every channel, estimator and report uses it.

* SNR = Es/N0 per *complex* channel symbol, with unit average transmit power (Es = 1).
* Complex AWGN has total variance ``N0 = 10**(-snr_db/10)``: ``N0/2`` per real dimension.
  (Getting this wrong costs 3 dB; see the Deep-JSCC reimplementation issue in REFERENCES.)
* CBR (channel bandwidth ratio) = complex channel symbols / image pixels (grayscale).
  ``payload`` CBR counts the codec's analog symbols; ``total`` CBR adds side info, header
  and pilot/preamble overhead expressed in complex symbols.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def noise_variance(snr_db: float) -> float:
    """Complex noise variance N0 for unit-power symbols at ``snr_db`` (Es/N0)."""
    return 10.0 ** (-float(snr_db) / 10.0)


def snr_db_from_powers(signal_power: float, noise_power: float) -> float:
    if noise_power <= 0:
        return math.inf
    if signal_power <= 0:
        return -math.inf
    return 10.0 * math.log10(signal_power / noise_power)


def complex_awgn(shape, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Complex Gaussian noise with E|n|^2 = N0 (N0/2 per real dimension)."""
    sigma = math.sqrt(noise_variance(snr_db) / 2.0)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * sigma


def normalize_power(symbols: np.ndarray) -> np.ndarray:
    """Scale complex symbols to unit average power (all-zero input is returned as is)."""
    p = float(np.mean(np.abs(symbols) ** 2)) if symbols.size else 0.0
    return symbols if p == 0 else symbols / math.sqrt(p)


def cbr(n_complex_symbols: float, n_pixels: int) -> float:
    """Channel bandwidth ratio: complex channel symbols per (grayscale) pixel."""
    if n_pixels <= 0:
        raise ValueError("image has no pixels")
    return float(n_complex_symbols) / float(n_pixels)


def bits_to_complex_symbols(n_bits: float, bits_per_symbol: float) -> float:
    """Complex symbols needed to carry ``n_bits`` digitally at ``bits_per_symbol`` (code rate x log2 M)."""
    if bits_per_symbol <= 0:
        raise ValueError("bits_per_symbol must be positive")
    return n_bits / bits_per_symbol


def capacity_bits_per_symbol(snr_db: float) -> float:
    """AWGN capacity log2(1 + SNR) in bits per complex channel use."""
    return math.log2(1.0 + 10.0 ** (snr_db / 10.0))


def parse_number(text: str) -> float:
    """Parse ``"10"``, ``"-2.5"`` or a fraction such as ``"1/16"``."""
    text = text.strip()
    try:
        return float(Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"not a number or fraction: {text!r}") from None


def parse_spec(spec: str) -> list[float]:
    """Parse a sweep spec: a list ``"0,5,10"``, a range ``"-5:25:5"`` (inclusive) or one value.

    Fractions are allowed anywhere (``"1/64,1/32,1/16"``).
    """
    spec = str(spec).strip()
    if not spec:
        raise ValueError("empty value list")
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"range must be start:stop[:step], got {spec!r}")
        start, stop = parse_number(parts[0]), parse_number(parts[1])
        step = parse_number(parts[2]) if len(parts) == 3 else 1.0
        if step == 0:
            raise ValueError(f"range step is zero in {spec!r}")
        if (stop - start) * step < 0:
            raise ValueError(f"empty range {spec!r}")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        return [round(start + i * step, 10) for i in range(n)]
    values = [parse_number(p) for p in spec.split(",") if p.strip()]
    if not values:
        raise ValueError(f"empty value list {spec!r}")
    return values
