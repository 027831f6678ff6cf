"""Symbol-level channel (no OFDM, no sync) for fast studies, same SNR convention as ``snr.py``.

Kept pure numpy (``codec.channel`` imports torch); it matches ``codec.channel.numpy_channel``'s
convention: complex AWGN of variance ``10**(-snr_db/10)`` per unit-power symbol, Rayleigh
block fading with perfect CSI and ZF/MMSE equalisation, frame erasures as zeroed symbols.
Fading models are the named ones of ``channel_models``; the bare ``rayleigh`` stays an alias of
``rayleigh_block1536`` (what it always meant here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import channel_models as cm
from ..errors import MedJSCCError
from ..snr import noise_variance

# "erasure" is AWGN plus frame losses; every other kind is a channel_models name
KINDS = ("erasure",) + tuple(n for n in cm.names("phy_symbol") if n != "multipath")


@dataclass
class SymbolChannelOutput:
    symbols: np.ndarray      # complex64 received (equalised) symbols, zeros where erased
    erased: np.ndarray       # bool
    noise_var: np.ndarray    # float32 per-symbol post-equalisation error variance (inf if erased)
    gains: np.ndarray | None = None   # complex fading gains applied (None without fading)


def symbol_channel(symbols, kind: str = "awgn", snr_db: float = 10.0, rng: np.random.Generator | None = None,
                   *, block_len: int | None = None, equalizer: str = "mmse", erasure_prob: float = 0.0,
                   frame_len: int = 1536) -> SymbolChannelOutput:
    """AWGN / Rayleigh (the model's coherence, or ``block_len`` symbols per coefficient when
    given) / frame erasures. ``rayleigh_frame`` has one gain per ``frame_len`` symbols.

    ``erasure_prob`` (any kind; ``kind="erasure"`` is AWGN plus erasures) drops whole frames of
    ``frame_len`` symbols, as a lost OFDM frame would.
    """
    if kind not in KINDS:
        raise MedJSCCError(f"symbol channel kind must be one of {KINDS}, got {kind!r}")
    if equalizer not in ("zf", "mmse"):
        raise MedJSCCError(f"equalizer must be 'zf' or 'mmse', got {equalizer!r}")
    if not (0.0 <= erasure_prob <= 1.0):
        raise MedJSCCError(f"erasure_prob must be in [0, 1], got {erasure_prob}")
    if (block_len is not None and block_len < 1) or frame_len < 1:
        raise MedJSCCError("block_len and frame_len must be >= 1")
    rng = rng if rng is not None else np.random.default_rng()
    x = np.asarray(symbols, np.complex128).reshape(-1)
    n = x.size
    n0 = noise_variance(snr_db)

    def crandn(size):
        return (rng.standard_normal(size) + 1j * rng.standard_normal(size)) * math.sqrt(0.5)

    y = x + crandn(n) * math.sqrt(n0)
    nvar = np.full(n, n0)
    h = None
    model = cm.MODELS["awgn"] if kind == "erasure" else cm.resolve(kind, "phy_symbol")
    if model.fading != "none":
        if block_len is not None:
            model = cm.ChannelModel("custom", "rayleigh", int(block_len), "")
        # the AWGN draw above is discarded on fading channels: kept so seeded runs reproduce
        h = cm.gains(model, n, rng, frame_len=frame_len, layout="split")
        y = h * x + crandn(n) * math.sqrt(n0)
        h2 = np.abs(h) ** 2
        if equalizer == "zf":
            y = y / np.where(np.abs(h) > 1e-9, h, 1e-9)
            nvar = n0 / np.maximum(h2, 1e-18)
        else:
            y = np.conj(h) * y / (h2 + n0)
            nvar = n0 / (h2 + n0)
    erased = np.zeros(n, bool)
    if kind == "erasure" or erasure_prob > 0:
        lost = rng.random(-(-n // frame_len)) < erasure_prob
        erased = np.repeat(lost, frame_len)[:n]
    y[erased] = 0
    nvar = np.where(erased, np.inf, nvar)
    return SymbolChannelOutput(y.astype(np.complex64), erased, nvar.astype(np.float32), h)
