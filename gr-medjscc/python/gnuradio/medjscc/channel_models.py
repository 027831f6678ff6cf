"""Named symbol-level fading models: one definition used by training, sweeps, the symbol link and
the PDU block.

"rayleigh" used to mean four different things (block fading of 256 symbols in training,
i.i.d. per symbol in the sweep, blocks of 1536 in ``phy.symbol_channel``, one gain per PDU in
``blocks.symbol_channel``). Each model here states its coherence in symbols: the number of
consecutive symbols that share one fading gain, counted from the first symbol of each call.

=====================  ==========================================================================
name                   fading
=====================  ==========================================================================
``awgn``               none (h = 1)
``rayleigh_iid``       h ~ CN(0, 1) i.i.d. per symbol (coherence 1)
``rayleigh_block256``  h ~ CN(0, 1) constant over 256 symbols
``rayleigh_block1536`` h ~ CN(0, 1) constant over 1536 symbols (48 data carriers x 32 OFDM symbols)
``rayleigh_frame``     h ~ CN(0, 1) constant over one frame: ``frame_len`` symbols (1536 unless
                       the caller says otherwise), one PDU in ``blocks.symbol_channel``
``multipath``          per 1536-symbol frame one 8-tap exponential-PDP Rayleigh channel seen on
                       the 48 data subcarriers (block fading in time, correlated in frequency)
=====================  ==========================================================================

The bare name ``rayleigh`` is kept, as an alias of what each place meant before (``ALIASES``),
so seeded figures made with it reproduce:

* training and ``medjscc eval`` / demo symbol link (``codec.channel``): ``rayleigh_block256``
* the sweep (``evaluation.channel``): ``rayleigh_iid``
* ``phy.symbol_channel``: ``rayleigh_block1536``
* ``blocks.symbol_channel``: ``rayleigh_frame`` (``fading="block"``) or ``rayleigh_iid``
  (``fading="fast"``)

Pure numpy (``phy`` imports it and must not import torch or GNU Radio); the torch twin in
``codec.channel`` reads the coherence from here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError

FRAME_SYMBOLS = 48 * 32     # one OFDM frame of payload (config.OfdmConfig defaults)


@dataclass(frozen=True)
class ChannelModel:
    name: str
    fading: str                 # "none" | "rayleigh" | "multipath"
    coherence: int | None       # symbols per gain; None: one gain per frame (frame_len) / no fading
    description: str

    def coherence_symbols(self, frame_len: int = FRAME_SYMBOLS) -> int | None:
        """Symbols that share one gain (None for AWGN)."""
        if self.fading == "none":
            return None
        return int(frame_len) if self.coherence is None else self.coherence


MODELS: dict[str, ChannelModel] = {m.name: m for m in (
    ChannelModel("awgn", "none", None, "no fading"),
    ChannelModel("rayleigh_iid", "rayleigh", 1, "Rayleigh, i.i.d. per symbol"),
    ChannelModel("rayleigh_block256", "rayleigh", 256, "Rayleigh block fading, 256 symbols"),
    ChannelModel("rayleigh_block1536", "rayleigh", FRAME_SYMBOLS, "Rayleigh block fading, 1536 symbols"),
    ChannelModel("rayleigh_frame", "rayleigh", None, "Rayleigh, one gain per frame"),
    ChannelModel("multipath", "multipath", FRAME_SYMBOLS,
                 "8-tap Rayleigh multipath seen on 48 OFDM data carriers, one channel per 1536 symbols"),
)}

# what the bare name meant at each place before the models had names (kept, documented above)
ALIASES: dict[str, dict[str, str]] = {
    "codec": {"rayleigh": "rayleigh_block256"},
    "sweep": {"rayleigh": "rayleigh_iid"},
    "phy_symbol": {"rayleigh": "rayleigh_block1536"},
    "block": {"rayleigh": "rayleigh_frame", "rayleigh_fast": "rayleigh_iid"},
}


def resolve(name: str, place: str) -> ChannelModel:
    """The model a channel name means at ``place`` (one of ``ALIASES``); one-line error if unknown."""
    if place not in ALIASES:
        raise InputError(f"unknown channel place {place!r}; one of {', '.join(ALIASES)}")
    key = ALIASES[place].get(name, name)
    if key not in MODELS:
        names = sorted(set(MODELS) | set(ALIASES[place]))
        raise InputError(f"unknown channel model {name!r}; choose one of {', '.join(names)}")
    return MODELS[key]


def names(place: str) -> tuple[str, ...]:
    """Every name ``place`` accepts (its aliases included)."""
    return tuple(sorted(set(MODELS) | set(ALIASES[place])))


def _cn_pairs(rng, n: int) -> np.ndarray:
    """n CN(0, 1) samples drawn as (n, 2): a longer draw extends a shorter one (sweep prefixes)."""
    pairs = rng.standard_normal((n, 2))
    return (pairs[:, 0] + 1j * pairs[:, 1]) / np.sqrt(2.0)


def _cn_split(rng, n: int) -> np.ndarray:
    """n CN(0, 1) samples, all real parts then all imaginary parts."""
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * np.sqrt(0.5)


# data subcarrier indices of the 802.11a-like layout (DC, guards and pilots excluded)
_FFT, _N_DATA, _TAPS = 64, 48, 8
_DATA_BINS = np.array([k for k in range(-26, 27) if k not in (0, -21, -7, 7, 21)]) % _FFT


def gains(model: ChannelModel, n: int, rng: np.random.Generator, *, frame_len: int = FRAME_SYMBOLS,
          layout: str = "pairs") -> np.ndarray | None:
    """Complex gains of ``n`` symbols under ``model`` (None for AWGN).

    ``layout`` only says how the CN(0, 1) values are read from ``rng``: ``"pairs"`` (the sweep's
    order) or ``"split"`` (all real parts, then all imaginary parts: the order ``codec.channel``,
    ``phy.symbol_channel`` and the PDU block always used). It keeps seeded results reproducible
    and changes no statistic.
    """
    if model.fading == "none":
        return None
    draw = {"pairs": _cn_pairs, "split": _cn_split}.get(layout)
    if draw is None:
        raise InputError(f"layout must be 'pairs' or 'split', got {layout!r}")
    coh = model.coherence_symbols(frame_len)
    if coh < 1:
        raise InputError(f"coherence must be at least 1 symbol, got {coh}")
    n_blocks = -(-int(n) // coh)
    if model.fading == "rayleigh":
        h = draw(rng, n_blocks)
        return h if coh == 1 else np.repeat(h, coh)[:n]
    # multipath: one tap set per block, seen on the data carriers, blocks of 32 OFDM symbols
    per_sym = coh // _N_DATA
    pdp = np.exp(-np.arange(_TAPS) / 2.0)
    pdp /= pdp.sum()
    taps = draw(rng, n_blocks * _TAPS).reshape(n_blocks, _TAPS) * np.sqrt(pdp)
    freq = np.fft.fft(taps, _FFT, axis=1)[:, _DATA_BINS]               # (blocks, 48)
    return np.repeat(freq, per_sym, axis=0).reshape(-1)[:n]
