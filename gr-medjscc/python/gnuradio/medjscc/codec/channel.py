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


# ---------------------------------------------------------------------------- CSI training channel
# What an OFDM receiver hands the decoder after the link's interleaver: each symbol rode its own
# subcarrier and OFDM symbol, so its channel gain is an independent draw from the channel's gain
# distribution (the interleaver scatters frames and carriers over the image).
CSI_MIX = (("awgn", 0.35), ("rayleigh", 0.25), ("rician", 0.15), ("multipath", 0.25))
MULTIPATH_CARRIERS = 48   # data carriers of the default OFDM layout (gains drawn from these)


def _power_gains(kind: str, n: int, device, generator) -> torch.Tensor:
    """|h|^2 per symbol (mean 1) for one sample of the CSI mix."""
    if kind == "awgn":
        return torch.ones(n, device=device)
    if kind == "rayleigh":
        return _crandn((n,), device, generator).abs() ** 2
    if kind == "rician":
        k = 1.0 + 9.0 * float(torch.rand((), generator=generator))     # K in [1, 10]
        los = math.sqrt(k / (k + 1.0))
        return (los + _crandn((n,), device, generator) * math.sqrt(1.0 / (k + 1.0))).abs() ** 2
    if kind == "multipath":
        # a static channel of up to 3 taps within 10 samples (64-FFT grid), mean power 1
        taps = torch.zeros(64, dtype=torch.complex64, device=device)
        delays = torch.randperm(10, generator=generator)[:3].tolist()
        p = torch.rand(3, generator=generator) + 0.1
        for d, w in zip(delays, (p / p.sum()).tolist()):
            taps[d] += _crandn((1,), device, generator)[0] * math.sqrt(w)
        taps = taps / taps.abs().pow(2).sum().sqrt().clamp_min(1e-6)
        carriers = torch.fft.fft(taps)[torch.randperm(64, generator=generator)[:MULTIPATH_CARRIERS]]
        g = carriers.abs() ** 2
        return g[torch.randint(0, MULTIPATH_CARRIERS, (n,), generator=generator, device=device)]
    raise MedJSCCError(f"unknown CSI mix kind {kind!r}")


def csi_link_channel(z: torch.Tensor, snr_db, *, erasure_fraction: float = 0.25,
                     erasure_share: tuple = (0.05, 0.4), mix=CSI_MIX,
                     generator: torch.Generator | None = None):
    """Training twin of the OFDM link as the decoder sees it: per-symbol fading gains from ``mix``
    (drawn per sample), perfect-CSI MMSE equalisation, and in ``erasure_fraction`` of the samples a
    random share of the symbols lost (zeros). z: complex (B, n) with unit mean power.

    Returns ``(y, inv_snr, snr_rx_db)``: equalised symbols, each symbol's 1/SNR_i (inf where lost:
    what the receiver's per-symbol noise variance states) and the SNR the receiver reports for the
    image (the AWGN SNR with the same mean error, lost symbols counting as error 1; see
    ``blocks.jscc_rx.erasure_snr_db``)."""
    b, n = z.shape
    dev = z.device
    snr = _per_batch(snr_db, b, dev)
    n0 = 10.0 ** (-snr / 10.0)
    names = [k for k, _ in mix]
    probs = torch.tensor([w for _, w in mix], dtype=torch.float32)
    pick = torch.multinomial(probs, b, replacement=True, generator=generator).tolist()
    g = torch.stack([_power_gains(names[i], n, dev, generator) for i in pick])        # (B, n)
    phase = torch.exp(1j * 2 * math.pi * torch.rand((b, n), generator=generator, device=dev))
    h = g.sqrt() * phase
    y = h * z + _crandn((b, n), dev, generator) * n0.sqrt()[:, None]
    out = torch.conj(h) * y / (g + n0[:, None])
    inv_snr = n0[:, None] / g.clamp_min(1e-12)
    mse = n0[:, None] / (g + n0[:, None])
    hit = torch.rand(b, generator=generator) < erasure_fraction
    lo, hi = erasure_share
    share = torch.where(hit, lo + (hi - lo) * torch.rand(b, generator=generator), torch.zeros(b))
    lost = torch.rand((b, n), generator=generator, device=dev) < share.to(dev)[:, None]
    out = torch.where(lost, torch.zeros_like(out), out)
    inv_snr = torch.where(lost, torch.full_like(inv_snr, float("inf")), inv_snr)
    # over the symbols actually sent (the model's unused slots are exact zeros)
    sent = (z != 0).float()
    mse = (torch.where(lost, torch.ones_like(mse), mse) * sent).sum(1) / sent.sum(1).clamp_min(1.0)
    snr_rx_db = 10.0 * torch.log10((1.0 / mse.clamp_min(1e-12) - 1.0).clamp_min(1e-3))
    return out, inv_snr, snr_rx_db
