"""Public codec API: ``load_codec`` / ``build_codec`` -> ``Codec.encode`` / ``Codec.decode``.

Stream layout: symbol j of every latent position with k_i > j, raster order, for j = 0, 1, ...
(index-major), so a lost frame removes refinement symbols of many positions rather than whole
positions. CBR: ``cbr_payload`` = analog symbols / pixels, ``cbr_total`` adds the side info at
``SIDE_INFO_BITS_PER_SYMBOL`` bits per complex symbol (QPSK, rate 1/2).

Fallbacks: ``decode(side_info=None)`` (its CRC failed) -> a variable-length model cannot place
the symbols, so the image is counted as lost and a mid-grey (128) image is returned with a
warning; fixed-length models need no side info and decode normally. A corrupted but
CRC-passing side info block is treated the same way. A missing ROI mask on an ROI model means
"whole image is ROI".
"""
from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, MedJSCCError
from . import allocation, plan, repetition, sideinfo
from .encoded import EncodedImage  # noqa: F401  (part of this API)
from .layers import SNR_MAX_DB, SNR_MIN_DB
from .models import DOWNSCALE, JSCCModel, ModelConfig, build_model
from .weights import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, MODEL_NAMES, model_from_checkpoint,  # noqa: F401
                      read_checkpoint, resolve_weights, save_weights, shipped_models_dir)

log = logging.getLogger(__name__)

MIN_SIDE, MAX_SIDE = 16, 4096
ALLOCATION_SCORES = ("entropy", "energy")   # Codec.allocation_score: the design, and a what-if
CBR_TOLERANCE = 0.02
FALLBACK_GREY = 128
SIDE_INFO_FRACTION = plan.SIDE_INFO_FRACTION        # re-exported: the allocation plan owns them
BITS_PER_CELL_ESTIMATE = plan.BITS_PER_CELL_ESTIMATE


# ------------------------------------------------------------------------------ codec
def _clamp_snr(snr_db) -> float:
    try:
        s = float(snr_db)
    except (TypeError, ValueError):
        raise InputError(f"snr_db must be a number, got {snr_db!r}") from None
    if not math.isfinite(s):
        raise InputError(f"snr_db must be finite, got {snr_db!r}")
    if s < SNR_MIN_DB or s > SNR_MAX_DB:
        c = min(max(s, SNR_MIN_DB), SNR_MAX_DB)
        msg = f"snr_db {s:g} outside the trained range [{SNR_MIN_DB:g}, {SNR_MAX_DB:g}] dB; clamped to {c:g}"
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        log.warning(msg)
        return c
    return s


def _check_shape(shape) -> tuple[int, int]:
    try:
        h, w = int(shape[0]), int(shape[1])
        if len(shape) != 2:
            raise ValueError
    except (TypeError, ValueError, IndexError):
        raise InputError(f"shape must be (H, W), got {shape!r}") from None
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise InputError(f"image size {h}x{w} unsupported: each side must be in [{MIN_SIDE}, {MAX_SIDE}] px")
    return h, w


def _check_image(image) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        raise InputError(f"image must be grayscale HxW, got a colour image of shape {a.shape}; convert it to gray first")
    if a.ndim != 2:
        raise InputError(f"image must be a grayscale HxW array, got shape {a.shape}")
    _check_shape(a.shape)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise InputError(f"image dtype {a.dtype} unsupported (use uint8 or float in [0, 255])")
    f = a.astype(np.float32)
    if not np.isfinite(f).all():
        raise InputError("image contains NaN or infinite values")
    if f.min() < 0 or f.max() > 255:
        raise InputError(f"image values must lie in [0, 255], got [{f.min():g}, {f.max():g}]")
    return f / 255.0


class Codec:
    """A trained (or random-init) JSCC model with numpy in/out."""

    def __init__(self, model: JSCCModel, name: str | None = None, device: str = "cpu", meta: dict | None = None):
        self.model = model.to(device).eval()
        self.cfg: ModelConfig = model.cfg
        self.name = name or model.cfg.name
        self.device = torch.device(device)
        self.meta = meta or {}
        self.rate_block_override: int | None = None   # experiments: pin the allocation cell size
        # experiments: "entropy" (the hyperprior's bits, the design) or "energy" (the strongest
        # latent coefficients; see JSCCModel.strongest_pair_counts). The decoder reads the result
        # from the side info either way.
        self.allocation_score: str = "entropy"
        # frozen-weight callers (sweeps) may set this: encode then reuses the networks' outputs for
        # the last (image, mask, SNR) when only the CBR changes (the symbol link's side-info frame
        # makes methods._symbol_link_encode retry the CBR). Off by default: weights being trained
        # would be served stale features.
        self.reuse_analysis: bool = False
        self._analysis_memo: tuple | None = None
        # share of the unique symbols sent twice (codec.repetition), paid out of the same CBR;
        # encode(repeat_strong=) overrides it per call. The decoder reads it from the side info.
        self.repeat_strong: float = 0.0

    # -- geometry ----------------------------------------------------------------------
    @staticmethod
    def latent_shape(shape) -> tuple[int, int]:
        h, w = shape
        return -(-h // DOWNSCALE), -(-w // DOWNSCALE)

    def cell_shape(self, shape, block: int | None = None) -> tuple[int, int]:
        return allocation.block_grid(self.latent_shape(shape), block or self.cfg.rate_block)

    def rate_block_for(self, shape, target_total: float, mask_bits: int = 0) -> int:
        """Allocation cell size for this budget (``plan.rate_block_for``)."""
        return plan.rate_block_for(self.cfg, shape, target_total, mask_bits, self.rate_block_override)

    def _roi_grid(self, mask, shape) -> np.ndarray | None:
        if not self.cfg.use_roi:
            return None
        gh, gw = self.latent_shape(shape)
        if mask is None:
            return np.ones((gh, gw), dtype=bool)
        from ..roi.sideinfo import mask_to_grid

        h, w = shape
        padded = np.zeros((gh * DOWNSCALE, gw * DOWNSCALE), dtype=bool)
        padded[:h, :w] = mask
        return mask_to_grid(padded, (gh, gw), rule="any")

    def _pad(self, x01: np.ndarray) -> torch.Tensor:
        h, w = x01.shape
        gh, gw = self.latent_shape((h, w))
        t = torch.from_numpy(x01)[None, None].to(self.device)
        return F.pad(t, (0, gw * DOWNSCALE - w, 0, gh * DOWNSCALE - h), mode="replicate")

    def _side_info(self, rate_idx, roi_grid, block: int | None = None, power_code: int | None = None,
                   repeat_code: int = 0) -> bytes:
        return plan.side_info(self.cfg, rate_idx, roi_grid, block, power_code, repeat_code)

    def max_cbr(self, shape) -> float:
        gh, gw = self.latent_shape(shape)
        return self.cfg.k_max * gh * gw / float(shape[0] * shape[1])

    def _roi_tensor(self, roi_grid, latent_hw) -> torch.Tensor:
        if roi_grid is None:
            return torch.zeros(1, 1, *latent_hw, device=self.device)
        return torch.from_numpy(roi_grid.astype(np.float32))[None, None].to(self.device)

    def _analyse(self, x01, mask, snr_db):
        """Checked [0, 1] image -> (latents y, ROI grid, ROI tensor, CAU SNR tensor, clamped SNR)."""
        h, w = x01.shape
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (h, w):
                raise InputError(f"mask shape {mask.shape} differs from image shape {(h, w)}")
            mask = mask.astype(bool)
        snr = _clamp_snr(snr_db)
        roi_grid = self._roi_grid(mask, (h, w))
        roi_t = self._roi_tensor(roi_grid, self.latent_shape((h, w)))
        snr_c = self.model.effective_snr(torch.tensor([snr], dtype=torch.float32, device=self.device))
        y = self.model.analysis(self._pad(x01), roi_t, snr_c)
        return y, roi_grid, roi_t, snr_c, snr

    @torch.no_grad()
    def rate_map(self, image, mask=None, snr_db: float = 10.0) -> np.ndarray:
        """The hyperprior's estimated bits per latent position (one 16x16 patch), (H/16, W/16):
        what variable-length allocation works from. Variable-length models only."""
        if not self.cfg.variable_length:
            raise MedJSCCError(f"model {self.name} has no entropy model (use a variable-length model such as ntscc)")
        y = self._analyse(_check_image(image), mask, snr_db)[0]
        return self.model.rate(y)[0][0].cpu().numpy()

    # -- encode ------------------------------------------------------------------------
    def _encoder_outputs(self, x01, mask, snr_db):
        """``_analyse`` + the hyperprior's bits (variable-length models) + the JSCC encoder's
        output: everything of ``encode`` that does not depend on the CBR (``reuse_analysis``)."""
        key = None
        if self.reuse_analysis:
            import hashlib

            m = None if mask is None else np.packbits(np.asarray(mask, dtype=bool).reshape(-1)).tobytes()
            key = (x01.shape, hashlib.blake2b(x01.tobytes(), digest_size=16).digest(),
                   None if m is None else (np.shape(mask), m), float(snr_db))
            memo = self._analysis_memo
            if memo is not None and memo[0] == key:
                return memo[1]
        y, roi_grid, roi_t, snr_c, snr = self._analyse(x01, mask, snr_db)
        bits = self.model.rate(y)[0] if self.cfg.variable_length else None
        out = (y, roi_grid, roi_t, snr_c, snr, bits, self.model.jscc_encode(y, roi_t, snr_c))
        if key is not None:
            self._analysis_memo = (key, out)
        return out

    @torch.no_grad()
    def encode(self, image, mask=None, snr_db: float = 10.0, cbr: float = 1.0 / 16.0,
               repeat_strong: float | None = None) -> EncodedImage:
        """``repeat_strong``: share of the unique (strongest first) symbols sent twice (``codec.repetition``;
        default ``self.repeat_strong``), within the same ``cbr``."""
        x01 = _check_image(image)
        repeat_code = repetition.code_for_fraction(self.repeat_strong if repeat_strong is None
                                                   else repeat_strong)
        h, w = x01.shape
        try:
            cbr = float(cbr)
        except (TypeError, ValueError):
            raise InputError(f"cbr must be a number, got {cbr!r}") from None
        if not (math.isfinite(cbr) and cbr > 0):
            raise InputError(f"cbr must be positive, got {cbr!r}")
        y, roi_grid, roi_t, snr_c, snr, bits, s = self._encoder_outputs(x01, mask, snr_db)
        gh, gw = self.latent_shape((h, w))
        n_pix = h * w
        target_total = cbr * n_pix

        score_for_block = None
        if self.cfg.variable_length:
            roi_f = roi_grid.astype(np.float64) if roi_grid is not None else None

            def _score(block):
                if self.allocation_score == "entropy":
                    return self.model.cell_scores(bits[0].cpu().numpy(), roi_f, block)
                if self.allocation_score == "energy":
                    # + 0.1: cells with no strong pair still rank (by the ROI weight) rather than tie at 0
                    counts = self.model.strongest_pair_counts(y, int(target_total))
                    return self.model.weigh_cells(counts + 0.1, roi_f, block)
                raise MedJSCCError(f"allocation_score must be one of {ALLOCATION_SCORES}, got {self.allocation_score!r}")
            score_for_block = _score
        pl = plan.plan_allocation(self.cfg, score_for_block, roi_grid, target_total, (h, w),
                                  self.rate_block_override, self.name, repeat_code)
        kmap, side, rate_idx, block_used = pl.kmap, pl.side_info, pl.rate_idx, pl.block

        kmap_t = torch.from_numpy(kmap)[None].to(self.device)
        used = self.model.channel_mask(kmap_t)
        power = None
        if self.cfg.linear_path:
            # normalise by the quantised power the receiver will read from the side info
            code = sideinfo.power_code(float(self.model.signal_power(s, used)[0]))
            power = torch.tensor([sideinfo.power_from_code(code)], dtype=s.dtype, device=s.device)
            side = self._side_info(rate_idx, roi_grid, block_used, code, repeat_code)
        s = self.model.power_normalize(s, used, power)
        z = self.model.to_complex(s)[0].cpu().numpy()            # (k_max, gh, gw)
        sym_mask = np.arange(self.cfg.k_max)[:, None, None] < kmap[None]
        symbols = z[sym_mask].astype(np.complex64)
        if repeat_code:
            symbols = repetition.spread(symbols, repeat_code)
        side_bits = sideinfo.size_bits(side)
        total = symbols.size + side_bits / sideinfo.SIDE_INFO_BITS_PER_SYMBOL
        return EncodedImage(symbols=symbols, side_info=side, shape=(h, w), n_payload_symbols=int(symbols.size),
                            side_info_bits=side_bits, cbr_payload=symbols.size / n_pix, cbr_total=total / n_pix,
                            snr_db=snr)

    def _payload_budget(self, target_total: float, side: bytes, shape) -> int:
        return plan.payload_budget(self.cfg, target_total, side, shape, self.name)

    # -- decode ------------------------------------------------------------------------
    @staticmethod
    def unique_erased(side_info, erased) -> np.ndarray:
        """The erased mask of the image's unique symbols: a repeated symbol (``codec.repetition``)
        is lost only when every copy is. What the receiver's erasure SNR rule should count."""
        er = np.asarray(erased, dtype=bool).reshape(-1)
        try:
            code = sideinfo.repeat_code_of(side_info) if side_info else 0
            if code:
                return repetition.combine(np.zeros(er.size, np.complex64), code, er)[1]
        except MedJSCCError:
            pass     # a malformed side info or symbol count: decode() reports it
        return er

    def _fallback(self, shape, reason: str) -> np.ndarray:
        msg = f"{reason}; image counted as lost (mid-grey returned)"
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        log.warning(msg)
        return np.full(shape, FALLBACK_GREY, dtype=np.uint8)

    @torch.no_grad()
    def decode(self, symbols, side_info, shape, snr_db: float = 10.0, erased=None, inv_snr=None) -> np.ndarray:
        """``inv_snr``: optional per-symbol 1/SNR_i after equalisation (inf where lost), what a
        receiver knows of each symbol's channel; a CSI model (``csi_input``) weighs the symbols
        by it, other models ignore it. With ``inv_snr`` the symbols are taken as MMSE estimates
        (y = x/(1 + 1/SNR_i) + noise: what the OFDM receiver's MMSE equaliser gives); without it
        as AWGN symbols y = x + n at ``snr_db``."""
        h, w = _check_shape(shape)
        sym = np.asarray(symbols)
        if sym.ndim != 1:
            raise InputError(f"symbols must be a 1-D complex array, got shape {sym.shape}")
        sym = sym.astype(np.complex64)
        if not np.isfinite(sym.view(np.float32)).all():
            raise InputError("received symbols contain NaN or infinite values")
        if erased is not None:
            er = np.asarray(erased, dtype=bool)
            if er.shape != sym.shape:
                raise InputError(f"erased mask shape {er.shape} differs from symbols {sym.shape}")
            sym = np.where(er, 0, sym).astype(np.complex64)
        if inv_snr is not None:
            inv_snr = np.asarray(inv_snr, dtype=np.float64).reshape(-1)
            if inv_snr.shape != sym.shape:
                raise InputError(f"inv_snr shape {inv_snr.shape} differs from symbols {sym.shape}")
            if np.isnan(inv_snr).any() or (inv_snr < 0).any():
                raise InputError("inv_snr must be >= 0 (inf for a lost symbol), got NaN or negative values")
        snr = _clamp_snr(snr_db)
        gh, gw = self.latent_shape((h, w))
        roi_grid, power_code = None, None
        if side_info is None:
            if self.cfg.variable_length:
                return self._fallback((h, w), "side info missing (CRC failed) for a variable-length model")
            rate_idx = None
            if self.cfg.use_roi:
                roi_grid = np.ones((gh, gw), dtype=bool)
        else:
            try:
                block = sideinfo.rate_block_of(side_info)
                power_code = sideinfo.power_code_of(side_info)
                rate_idx, mask_bytes = sideinfo.unpack(side_info, self.cell_shape((h, w), block), len(self.cfg.levels))
                if self.cfg.use_roi:
                    from ..roi.sideinfo import decode_mask

                    roi_grid = decode_mask(mask_bytes, (gh, gw)) if mask_bytes is not None else np.ones((gh, gw), bool)
                if self.cfg.variable_length and rate_idx is None:
                    raise MedJSCCError("side info has no rate indices for a variable-length model")
            except MedJSCCError as e:
                return self._fallback((h, w), f"side info unusable ({e})")
        if self.cfg.linear_path and power_code is None:
            return self._fallback((h, w), "side info lacks the power code a linear-path model needs")
        repeat_code = sideinfo.repeat_code_of(side_info) if side_info is not None else 0
        if repeat_code:
            if inv_snr is None and self.cfg.csi_input:
                # a CSI decoder is told each symbol's combined SNR: AWGN at snr_db on every copy
                inv_snr = np.full(sym.size, 10.0 ** (-snr / 10.0))
                sym = (sym / (1.0 + inv_snr)).astype(np.complex64)     # as MMSE estimates
            sym, er, inv_snr, _ = repetition.combine(sym, repeat_code, erased, inv_snr)
            erased = er if er.any() or erased is not None else None
        if self.cfg.variable_length:
            kmap = allocation.symbols_per_position(rate_idx, (gh, gw), block, self.cfg.levels)
            extra = sym.size - int(kmap.sum())
            free = int((self.cfg.k_max - kmap).sum())
            if extra < 0 or extra > free:
                raise InputError(f"got {sym.size} symbols but the side info describes {int(kmap.sum())} "
                                 f"(+ at most {free}) for a {h}x{w} image")
            kmap = allocation.add_remainder(kmap, extra, self.cfg.k_max)
        else:
            if sym.size > self.cfg.k_max * gh * gw:
                raise InputError(f"{sym.size} symbols exceed the model's maximum {self.cfg.k_max * gh * gw} for {h}x{w}")
            kmap = allocation.allocate_fixed(sym.size, (gh, gw), self.cfg.k_max)
        if int(kmap.sum()) != sym.size:
            raise InputError(f"got {sym.size} symbols but the side info describes {int(kmap.sum())} for a {h}x{w} image")
        z = np.zeros((self.cfg.k_max, gh, gw), dtype=np.complex64)
        z[np.arange(self.cfg.k_max)[:, None, None] < kmap[None]] = sym
        zt = torch.from_numpy(z)[None].to(self.device)
        s_rx = self.model.from_complex(zt)
        if self.cfg.linear_path:
            s_rx = s_rx * math.sqrt(sideinfo.power_from_code(power_code))
        kmap_t = torch.from_numpy(kmap.astype(np.float32))[None, None].to(self.device)
        roi_t = self._roi_tensor(roi_grid, (gh, gw))
        snr_c = self.model.effective_snr(torch.tensor([snr], dtype=torch.float32, device=self.device))
        rel_t = None
        if self.cfg.csi_input and inv_snr is None:
            s_rx = self.model.mmse_scale(s_rx, torch.tensor([snr], dtype=torch.float32, device=self.device))
        if self.cfg.csi_input and (inv_snr is not None or erased is not None):
            rel = (1.0 / (1.0 + inv_snr)) if inv_snr is not None else \
                np.full(sym.size, 1.0 / (1.0 + 10.0 ** (-snr / 10.0)))
            if erased is not None:
                rel = np.where(er, 0.0, rel)
            grid = np.zeros((self.cfg.k_max, gh, gw), dtype=np.float32)
            grid[np.arange(self.cfg.k_max)[:, None, None] < kmap[None]] = rel
            rel_t = torch.from_numpy(grid)[None].to(self.device)
        y_hat = self.model.jscc_decode(s_rx, kmap_t, roi_t, snr_c, rel_t)
        x_hat = self.model.synthesis(y_hat, snr_c)[0, 0, :h, :w].clamp(0, 1).cpu().numpy()
        return np.round(x_hat * 255.0).astype(np.uint8)


def build_codec(cfg_or_name="medjscc", device: str = "cpu", seed: int | None = 0) -> Codec:
    """Random-init codec (tests): a ModelConfig, a dict, an ablation name or a YAML config path.

    ``seed``: the initial weights are drawn from torch's RNG seeded with it inside a forked RNG
    state, so the same seed gives the same weights and the caller's global torch RNG is neither
    reseeded nor advanced. ``seed=None`` draws from the global RNG (and advances it)."""
    if isinstance(cfg_or_name, ModelConfig):
        cfg = cfg_or_name
    elif isinstance(cfg_or_name, dict):
        cfg = ModelConfig.from_dict(cfg_or_name)
    else:
        s = str(cfg_or_name)
        path = Path(s)
        if not path.suffix:
            path = shipped_models_dir() / "configs" / f"{s}.yaml"
        from .train import load_run_config

        _, cfg, _ = load_run_config(path)
    if seed is None:
        return Codec(build_model(cfg), device=device)
    with torch.random.fork_rng(devices=[]):   # CPU state only; weights are built on the CPU
        torch.manual_seed(int(seed))
        model = build_model(cfg)
    return Codec(model, device=device)


def load_codec(name_or_path="medjscc", device: str = "cpu"):
    """Load shipped weights (``models/<name>.pt``, SHA-256 verified) or a weights file path; the
    hybrid codec's names (``hybrid_softcast``, ``medjscc_hda``) give a ``HybridCodec``."""
    from .hybrid_codec import HybridCodec, hybrid_model_name

    if hybrid_model_name(name_or_path):
        return HybridCodec.load(name_or_path, device=device)
    path = resolve_weights(name_or_path)
    ckpt = read_checkpoint(path)
    model = model_from_checkpoint(ckpt, str(path))
    name = path.stem if str(name_or_path).endswith(".pt") else str(name_or_path)
    return Codec(model, name=name, device=device, meta=ckpt.get("meta", {}))
