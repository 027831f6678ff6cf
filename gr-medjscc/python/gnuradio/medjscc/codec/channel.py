"""Differentiable channel layer (torch) and its numpy twin for evaluation.

Project convention (``gnuradio.medjscc.snr``): SNR = Es/N0 per complex symbol with unit average
transmit power; complex AWGN has variance ``N0 = 10**(-snr/10)`` (N0/2 per real dimension).

Kinds:
* ``awgn``: y = x + n.
* ``rayleigh``: alias of ``channel_models``' ``rayleigh_block256`` (what training always used):
  block fading, h ~ CN(0, 1) constant over ``block_len`` symbols (256 unless given), y = h x + n,
  equalised at the receiver with the channel estimate (``csi="perfect"`` or ``"noisy"``: the
  estimate is h + e with e ~ CN(0, csi_error_var)) by MMSE (conj(h) y / (|h|^2 + N0)) or ZF (y / h).
* ``erasure``: AWGN plus whole frames of ``frame_len`` symbols lost with ``erasure_prob``
  (lost symbols are zeros: the receiver knows which frames are missing).
* every Rayleigh model of ``channel_models`` by name (``rayleigh_iid``, ``rayleigh_block256``,
  ``rayleigh_block1536``, ``rayleigh_frame``: one gain per ``frame_len`` symbols), with the
  coherence it states; an explicit ``block_len`` overrides it.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import channel_models as cm
from ..errors import MedJSCCError
from ..snr import noise_variance

# "erasure" is AWGN plus frame losses; the fading models come from channel_models
KINDS = ("erasure",) + tuple(n for n in cm.names("codec") if n != "multipath")
# 48 data carriers x 32 OFDM symbols: one PHY frame of payload (see config.OfdmConfig)
DEFAULT_FRAME_LEN = cm.FRAME_SYMBOLS


def _block_len(kind: str, block_len: int | None, frame_len: int) -> int | None:
    """Symbols per fading gain for ``kind`` (None: no fading); one-line error on unknown kinds."""
    if kind not in KINDS:
        raise MedJSCCError(f"channel kind must be one of {KINDS}, got {kind!r}")
    if kind == "erasure":
        return None
    coh = cm.resolve(kind, "codec").coherence_symbols(frame_len)
    if coh is None:
        return None
    coh = coh if block_len is None else int(block_len)
    if coh < 1:
        raise MedJSCCError(f"block_len must be at least 1 symbol, got {coh}")
    return coh


def _as_complex(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if torch.is_complex(x):
        return x, False
    if x.shape[-1] != 2:
        raise MedJSCCError("real channel input must have a last dimension of 2 (real, imag)")
    return torch.view_as_complex(x.contiguous()), True


def _per_batch(value, batch: int, device) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32, device=device)
    return t.expand(batch) if t.ndim == 0 else t


def _crandn(shape, device, generator=None) -> torch.Tensor:
    re = torch.randn(shape, device=device, generator=generator)
    im = torch.randn(shape, device=device, generator=generator)
    return torch.complex(re, im) * math.sqrt(0.5)


def apply_channel(x: torch.Tensor, kind: str = "awgn", snr_db=10.0, *, block_len: int | None = None,
                  csi: str = "perfect", csi_error_var: float = 0.01, equalizer: str = "mmse",
                  erasure_prob: float = 0.0, frame_len: int = DEFAULT_FRAME_LEN,
                  generator: torch.Generator | None = None, return_gains: bool = False):
    """Pass a batch of symbols (complex (B, n), or real (B, n, 2)) through the channel.

    ``snr_db`` is a float or a (B,) tensor. Returns the equalised received symbols in the same
    representation as the input. Differentiable with respect to ``x``. With ``return_gains``
    also the (B, n) complex fading gains (None without fading).
    """
    block_len = _block_len(kind, block_len, frame_len)
    z, was_real = _as_complex(x)
    b = z.shape[0]
    flat = z.reshape(b, -1)
    n0 = noise_variance(0.0) * 10.0 ** (-_per_batch(snr_db, b, flat.device) / 10.0)
    noise = _crandn(flat.shape, flat.device, generator) * n0.sqrt()[:, None]
    h_full = None
    if block_len is not None:
        n = flat.shape[1]
        n_blocks = -(-n // block_len)
        h = _crandn((b, n_blocks), flat.device, generator)
        h_full = h.repeat_interleave(block_len, dim=1)[:, :n]
        y = h_full * flat + noise
        if csi == "perfect":
            h_est = h_full
        elif csi == "noisy":
            h_est = h_full + (_crandn((b, n_blocks), flat.device, generator) * math.sqrt(csi_error_var)
                              ).repeat_interleave(block_len, dim=1)[:, :n]
        else:
            raise MedJSCCError(f"csi must be 'perfect' or 'noisy', got {csi!r}")
        if equalizer == "mmse":
            out = torch.conj(h_est) * y / (h_est.abs() ** 2 + n0[:, None])
        elif equalizer == "zf":
            out = y / torch.where(h_est.abs() > 1e-6, h_est, torch.full_like(h_est, 1e-6))
        else:
            raise MedJSCCError(f"equalizer must be 'mmse' or 'zf', got {equalizer!r}")
    else:
        out = flat + noise
    if kind == "erasure" or erasure_prob > 0:
        n = flat.shape[1]
        n_frames = -(-n // frame_len)
        keep = (torch.rand((b, n_frames), device=flat.device, generator=generator) >= erasure_prob)
        out = out * keep.repeat_interleave(frame_len, dim=1)[:, :n].to(out.real.dtype)
    out = out.reshape(z.shape)
    out = torch.view_as_real(out) if was_real else out
    return (out, h_full) if return_gains else out


def numpy_channel(symbols: np.ndarray, kind: str = "awgn", snr_db: float = 10.0,
                  rng: np.random.Generator | None = None, *, block_len: int | None = None, csi: str = "perfect",
                  csi_error_var: float = 0.01, equalizer: str = "mmse", erasure_prob: float = 0.0,
                  frame_len: int = DEFAULT_FRAME_LEN, return_erased: bool = False,
                  return_gains: bool = False):
    """numpy version of ``apply_channel`` for one 1-D complex symbol vector (evaluation).

    Returns complex64 received symbols; with ``return_erased=True`` also the bool erased mask;
    with ``return_gains=True`` also the fading gains (None for AWGN / erasure).
    """
    block_len = _block_len(kind, block_len, frame_len)
    rng = rng if rng is not None else np.random.default_rng()
    x = np.asarray(symbols, dtype=np.complex128).reshape(-1)
    n = x.size
    n0 = noise_variance(snr_db)

    def crandn(size):
        return (rng.standard_normal(size) + 1j * rng.standard_normal(size)) * math.sqrt(0.5)

    noise = crandn(n) * math.sqrt(n0)
    h = None
    if block_len is not None:
        n_blocks = -(-n // block_len)
        # "split" reads the rng as this function always did (seeded eval figures reproduce)
        h = cm.gains(cm.ChannelModel("custom", "rayleigh", block_len, ""), n, rng, layout="split")
        y = h * x + noise
        if csi == "perfect":
            h_est = h
        elif csi == "noisy":
            h_est = h + np.repeat(crandn(n_blocks) * math.sqrt(csi_error_var), block_len)[:n]
        else:
            raise MedJSCCError(f"csi must be 'perfect' or 'noisy', got {csi!r}")
        if equalizer == "mmse":
            out = np.conj(h_est) * y / (np.abs(h_est) ** 2 + n0)
        elif equalizer == "zf":
            out = y / np.where(np.abs(h_est) > 1e-6, h_est, 1e-6)
        else:
            raise MedJSCCError(f"equalizer must be 'mmse' or 'zf', got {equalizer!r}")
    else:
        out = x + noise
    erased = np.zeros(n, dtype=bool)
    if kind == "erasure" or erasure_prob > 0:
        n_frames = -(-n // frame_len)
        lost = rng.random(n_frames) < erasure_prob
        erased = np.repeat(lost, frame_len)[:n]
        out = np.where(erased, 0, out)
    out = out.astype(np.complex64)
    extra = ((erased,) if return_erased else ()) + ((h,) if return_gains else ())
    return (out, *extra) if extra else out
