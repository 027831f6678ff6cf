"""The JSCC model: one class, four ablations selected by ``ModelConfig`` switches.

    image -> g_a (x16 down, CAU) -> [MaskGuide] -> y -> f_e (CAU) -> 2*K_max real channels
          -> keep the first k_i complex symbols at each latent position -> power norm -> channel
          -> f_d (CAU, sees k-map [and ROI grid]) -> [MaskGuide^-1] -> g_s (x16 up, CAU) -> image

``variable_length`` adds the hyperprior rate estimator (k_i from -log2 p(y)), ``use_roi`` the
mask-guided processing and ROI-weighted allocation, ``use_cau`` the channel adaptive units.

``linear_path`` adds a linear skip around each stage: a linear transform beside g_a / g_s
(``linear_transform``: ``patch_klt``, a 16x16 patch KLT initialised from the training patches'
PCA, or ``full_frame``, ``layers.FullFrameWavelet``: a whole-image wavelet that still gives one
coefficient vector per latent cell, initialised from the training images) and 1x1 linear maps beside f_e / f_d (initialised
SoftCast-style: gain var^-1/4 per coefficient, SNR-aware scales from CAUs). The nonlinear
branches start at zero and learn corrections, so a short CPU training starts from a working
analog linear code instead of from noise. The per-image power-normalisation factor then travels
in the side info (16 bits), so the decoder can undo it.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..config import known_fields
from ..errors import MedJSCCError
from . import allocation
from .entropy import Hyperprior
from .layers import DownBlock, FullFrameWavelet, MaskGuide, PatchKLT, ResBlock, make_cau

DOWNSCALE = 16
LINEAR_TRANSFORMS = ("patch_klt", "full_frame")


@dataclass
class ModelConfig:
    name: str = "medjscc"
    variable_length: bool = True
    use_roi: bool = True
    use_cau: bool = True
    channels: tuple = (16, 32, 64)      # g_a widths before the latent
    latent_channels: int = 96           # M
    hyper_channels: int = 64
    k_max: int = 64                     # complex symbols per latent position at most
    levels: tuple = allocation.DEFAULT_LEVELS
    rate_block: int = 2                 # allocation cell = rate_block x rate_block latent positions
    roi_rate_weight: float = 2.0        # ROI cells' score multiplier in the allocation
    fixed_snr_db: float | None = None   # models trained at one SNR (CAU input pinned)
    score_power: float = 1.0            # allocation score = (bits + 1) ** score_power (x ROI weight)
    linear_path: bool = False           # KLT + linear skip paths (see module docstring)
    linear_transform: str = "patch_klt"  # the linear path's image transform: patch_klt | full_frame
    rate_scale: float = 1.0             # y x rate_scale enters the hyperprior (quantiser step 1/rate_scale)
    csi_input: bool = False             # decoder also takes each symbol's reliability (see jscc_decode)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = known_fields(cls, d, "model")
        for key in ("channels", "levels"):
            if key in d:
                d[key] = tuple(int(v) for v in d[key])
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        d["levels"] = list(self.levels)
        return d

    def validate(self):
        if len(self.channels) != 3:
            raise MedJSCCError("model.channels must list 3 widths (x16 down = 4 stages)")
        if self.levels[0] != 0 or list(self.levels) != sorted(set(self.levels)) or self.levels[-1] != self.k_max:
            raise MedJSCCError("model.levels must be increasing, start at 0 and end at k_max")
        if self.linear_path and self.latent_channels > DOWNSCALE * DOWNSCALE:
            raise MedJSCCError(f"model.latent_channels must be <= {DOWNSCALE * DOWNSCALE} with linear_path "
                               f"(a 16x16 patch has that many KLT coefficients)")
        if self.linear_transform not in LINEAR_TRANSFORMS:
            raise MedJSCCError(f"model.linear_transform must be one of {', '.join(LINEAR_TRANSFORMS)}, "
                               f"got {self.linear_transform!r}")
        if not self.rate_scale > 0:
            raise MedJSCCError("model.rate_scale must be positive")


class JSCCModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        c1, c2, c3 = cfg.channels
        m, k2 = cfg.latent_channels, 2 * cfg.k_max
        roi_in = 1 if cfg.use_roi else 0
        # analysis g_a
        self.ga = nn.ModuleList([DownBlock(1, c1, 5), DownBlock(c1, c2), DownBlock(c2, c3),
                                 DownBlock(c3, m, gdn=False)])
        self.ga_cau = nn.ModuleList([make_cau(cfg.use_cau, c) for c in (c1, c2, c3, m)])
        self.ga_res = ResBlock(m)
        self.enc_guide = MaskGuide(m) if cfg.use_roi else None
        self.hyper = Hyperprior(m, cfg.hyper_channels) if cfg.variable_length else None
        # JSCC encoder f_e: latent -> 2*k_max real channels (k_max complex), ordered by use
        self.fe1 = nn.Conv2d(m + roi_in, m, 3, padding=1)
        self.fe_cau = make_cau(cfg.use_cau, m)
        self.fe2 = nn.Conv2d(m, k2, 1)
        # JSCC decoder f_d: received channels + k-map (+ ROI grid) -> latent estimate
        self.fd1 = nn.Conv2d(k2 + 1 + roi_in, m, 3, padding=1)
        self.fd_cau = make_cau(cfg.use_cau, m)
        self.fd_res = ResBlock(m)
        self.dec_guide = MaskGuide(m, inverse=True) if cfg.use_roi else None
        # synthesis g_s (transposed convs: a quarter of the cost of sub-pixel convs)
        self.gs = nn.ModuleList([
            nn.ConvTranspose2d(m, c3, 3, stride=2, padding=1, output_padding=1),
            nn.ConvTranspose2d(c3, c2, 3, stride=2, padding=1, output_padding=1),
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1),
            nn.ConvTranspose2d(c1, 1, 5, stride=2, padding=2, output_padding=1),
        ])
        from compressai.layers import GDN
        self.gs_norm = nn.ModuleList([GDN(c, inverse=True) for c in (c3, c2, c1)])
        self.gs_cau = nn.ModuleList([make_cau(cfg.use_cau, c) for c in (m, c3, c2)])
        self.act = nn.LeakyReLU(0.1, inplace=True)
        nn.init.constant_(self.gs[-1].bias, 0.5)   # start from mid-grey, not black
        if cfg.linear_path:
            self._build_linear_path(m, k2)
        if cfg.csi_input:
            self._build_csi_inputs(m, k2)

    def _build_linear_path(self, m: int, k2: int):
        cfg = self.cfg
        self.klt = (FullFrameWavelet if cfg.linear_transform == "full_frame" else PatchKLT)(m, DOWNSCALE)
        self.fe_lin = nn.Conv2d(m, k2, 1, bias=False)
        self.fe_lin_cau = make_cau(cfg.use_cau, k2)
        self.fd_lin = nn.Conv2d(k2, m, 1, bias=False)
        self.fd_lin_cau = make_cau(cfg.use_cau, m)
        self.fd_mix = nn.Conv2d(m, m, 1)
        # Nonlinear branches start silent: the model begins as the linear analog code.
        for layer in (self.ga[-1].conv, self.fe2, self.fd_mix, self.gs[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.ga_res.conv2.weight)
        nn.init.zeros_(self.ga_res.conv2.bias)
        self.init_linear_gains(torch.ones(m))

    def _build_csi_inputs(self, m: int, k2: int):
        """Per-symbol reliability r = SNR_i / (1 + SNR_i) (0 for a lost symbol) enters the decoder
        twice: beside the symbols in f_d, and as a gain on each symbol of the linear path. Both
        start silent, so a model warm-started from one without CSI begins as exactly that model
        (up to the input convention: a CSI decoder takes MMSE-equalised symbols, see mmse_scale)."""
        k = self.cfg.k_max
        self.fd_csi = nn.Conv2d(k, m, 3, padding=1)
        # each symbol's gain from its own reliability (per-symbol LMMSE: the best weight for a
        # coefficient of variance v is v / (1 + (v - 1) r), nonlinear in r): a few features of r
        # per symbol, one group per symbol
        self.fd_lin_gate = nn.Conv2d(len(self.GATE_FEATURES) * k, k2, 1, groups=k)
        for layer in (self.fd_csi, self.fd_lin_gate):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    GATE_FEATURES = ("r", "sqrt_r", "r^2")

    @staticmethod
    def gate_features(rel: torch.Tensor) -> torch.Tensor:
        """(B, k, h, w) reliabilities -> (B, 3k, h, w): r, sqrt(r), r^2 of symbol j at 3j..3j+2."""
        b, k, h, w = rel.shape
        return torch.stack([rel, rel.clamp_min(0).sqrt(), rel * rel], dim=2).reshape(b, 3 * k, h, w)

    @staticmethod
    def awgn_reliability(kmap: torch.Tensor, snr_db: torch.Tensor, k_max: int) -> torch.Tensor:
        """(B, k_max, h, w) reliability of an AWGN channel at ``snr_db``: the same for every sent
        symbol, 0 where none is sent. kmap: (B, 1, h, w) symbol counts."""
        s = 10.0 ** (snr_db.float() / 10.0)
        j = torch.arange(k_max, device=kmap.device)[None, :, None, None]
        return (j < kmap).float() * (s / (1.0 + s))[:, None, None, None]

    @staticmethod
    def mmse_scale(z: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """AWGN symbols y = x + n -> the MMSE estimate y / (1 + N0), the form an OFDM receiver's
        MMSE equaliser hands over and a CSI decoder is trained on. z: (B, ...)."""
        n0 = 10.0 ** (-snr_db.float() / 10.0)
        return z / (1.0 + n0).reshape((-1,) + (1,) * (z.dim() - 1))

    @torch.no_grad()
    def init_linear_gains(self, variances: torch.Tensor):
        """SoftCast-style start: coefficient i -> real channel i with gain var_i^-1/4 (so power
        goes preferentially, but less than proportionally, to strong coefficients), inverse at
        the receiver."""
        m, k2 = self.fd_lin.out_channels, self.fe_lin.out_channels
        n = min(m, k2)
        g = variances[:n].clamp_min(1e-12) ** -0.25
        g = g / g[0]
        self.fe_lin.weight.zero_()
        self.fd_lin.weight.zero_()
        idx = torch.arange(n)
        self.fe_lin.weight[idx, idx, 0, 0] = g
        self.fd_lin.weight[idx, idx, 0, 0] = 1.0 / g

    @torch.no_grad()
    def init_linear_path(self, images):
        """Linear-path models: transform and SoftCast gains from training images ((H, W) floats in
        [0, 1], sides multiples of 16): the patch KLT from their 16x16 patches, the full-frame
        transform from the whole images."""
        if not self.cfg.linear_path:
            return
        if isinstance(self.klt, PatchKLT):
            p = DOWNSCALE
            patches = [torch.as_tensor(im).reshape(im.shape[0] // p, p, im.shape[1] // p, p)
                       .permute(0, 2, 1, 3).reshape(-1, p * p) for im in images]
            self.init_linear_gains(self.klt.init_from_patches(torch.cat(patches)))
        else:
            self.init_linear_gains(self.klt.init_from_images(images))

    # ------------------------------------------------------------------ pieces
    def effective_snr(self, snr_db: torch.Tensor) -> torch.Tensor:
        if self.cfg.fixed_snr_db is not None:
            return torch.full_like(snr_db, float(self.cfg.fixed_snr_db))
        return snr_db

    def analysis(self, x, roi, snr_db):
        h = x
        for block, cau in zip(self.ga, self.ga_cau):
            h = cau(block(h), snr_db)
        if self.cfg.linear_path:
            h = h + self.klt.analysis(x)
        y = self.ga_res(h)
        if self.enc_guide is not None:
            y = self.enc_guide(y, roi)
        return y

    def rate(self, y):
        """Estimated bits per latent position (B, h, w) and hyper-latent bits (B,)."""
        return self.hyper(y * self.cfg.rate_scale)

    def jscc_encode(self, y, roi, snr_db):
        inp = torch.cat([y, roi], 1) if self.cfg.use_roi else y
        s = self.fe2(self.fe_cau(self.act(self.fe1(inp)), snr_db))
        if self.cfg.linear_path:
            s = s + self.fe_lin_cau(self.fe_lin(y), snr_db)
        return s

    def jscc_decode(self, s_rx, kmap, roi, snr_db, reliability=None):
        """``reliability`` (B, k_max, h, w), CSI models only: per-symbol SNR_i / (1 + SNR_i), 0 where
        lost (None: AWGN at ``snr_db``). On a faded or selective channel the symbols differ in
        quality although the image has one SNR; a CSI model weighs each by what it is worth."""
        parts = [s_rx, kmap / float(self.cfg.k_max)] + ([roi] if self.cfg.use_roi else [])
        h = self.fd1(torch.cat(parts, 1))
        s_lin = s_rx
        if self.cfg.csi_input:
            rel = reliability if reliability is not None else self.awgn_reliability(kmap, snr_db, self.cfg.k_max)
            h = h + self.fd_csi(rel)
            s_lin = s_rx * (1.0 + self.fd_lin_gate(self.gate_features(rel)))
        y = self.fd_res(self.fd_cau(self.act(h), snr_db))
        if self.cfg.linear_path:
            y = self.fd_mix(y) + self.fd_lin_cau(self.fd_lin(s_lin), snr_db)
        if self.dec_guide is not None:
            y = self.dec_guide(y, roi)
        return y

    def synthesis(self, y, snr_db):
        h = y
        for i, up in enumerate(self.gs):
            if i < 3:
                h = self.gs_norm[i](up(self.gs_cau[i](h, snr_db)))
            else:
                h = up(h)
        if self.cfg.linear_path:
            h = h + self.klt.synthesis(y)
        return h

    # ------------------------------------------------------------------ helpers
    def channel_mask(self, kmap: torch.Tensor) -> torch.Tensor:
        """(B, h, w) symbol counts -> (B, 2*k_max, h, w) 0/1 mask (symbol j = channels 2j, 2j+1)."""
        j = torch.arange(self.cfg.k_max, device=kmap.device)[None, :, None, None]
        used = (j < kmap[:, None]).to(torch.float32)
        return used.repeat_interleave(2, dim=1)

    @staticmethod
    def to_complex(s: torch.Tensor) -> torch.Tensor:
        b, c, h, w = s.shape
        s = s.reshape(b, c // 2, 2, h, w)
        return torch.complex(s[:, :, 0], s[:, :, 1])

    @staticmethod
    def from_complex(z: torch.Tensor) -> torch.Tensor:
        b, k, h, w = z.shape
        return torch.stack([z.real, z.imag], dim=2).reshape(b, 2 * k, h, w)

    @staticmethod
    def signal_power(s: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
        """Average power per transmitted complex symbol, per image (B,)."""
        n_complex = used.sum(dim=(1, 2, 3)) / 2.0
        return ((s * s * used).sum(dim=(1, 2, 3)) / n_complex.clamp_min(1.0)).clamp_min(1e-12)

    @classmethod
    def power_normalize(cls, s: torch.Tensor, used: torch.Tensor, power: torch.Tensor | None = None) -> torch.Tensor:
        """Unit average power per transmitted complex symbol, per image (``power``: the divisor
        to use, e.g. the quantised value the receiver gets in the side info)."""
        if power is None:
            power = cls.signal_power(s, used)
        return s * used / power.sqrt()[:, None, None, None]

    def allocate(self, bits: torch.Tensor | None, roi: torch.Tensor | None, n_target, latent_bhw) -> torch.Tensor:
        """Symbol counts per latent position (B, h, w) for per-image budgets ``n_target``: channel
        uses including the side info, planned exactly as ``Codec.encode`` plans them
        (``plan.plan_allocation``: cell size, side-info fixed point, remainder), so the decoder
        trains on the rate maps it will be given."""
        from . import plan

        cfg = self.cfg
        b, h, w = latent_bhw
        out = np.zeros((b, h, w), dtype=np.int64)
        for i in range(b):
            roi_hw = None if roi is None else roi[i, 0].detach().cpu().numpy().astype(np.float64)
            score_for_block = None
            if cfg.variable_length:
                bits_hw = bits[i].detach().cpu().numpy()
                score_for_block = functools.partial(self._cell_scores_at, bits_hw, roi_hw)
            grid, total, shape = None if roi_hw is None else roi_hw > 0.5, float(n_target[i]), (h * DOWNSCALE, w * DOWNSCALE)
            try:
                out[i] = plan.plan_allocation(cfg, score_for_block, grid, total, shape).kmap
            except MedJSCCError:
                # a small crop at the lowest CBR: its side info alone can exceed the budget, which
                # inference refuses; training gives it one payload symbol per position beyond that
                out[i] = plan.plan_allocation(cfg, score_for_block, grid, total + h * w, shape).kmap
        return torch.from_numpy(out)

    def _cell_scores_at(self, bits_hw, roi_hw, block):
        return self.cell_scores(bits_hw, roi_hw, block)

    def cell_scores(self, bits_hw: np.ndarray, roi_hw: np.ndarray | None, block: int | None = None) -> np.ndarray:
        """Allocation score per cell from the estimated bits per position (and the ROI grid)."""
        return self.weigh_cells((np.maximum(bits_hw, 0.0) + 1.0) ** self.cfg.score_power, roi_hw, block)

    def weigh_cells(self, per_position: np.ndarray, roi_hw: np.ndarray | None, block: int | None = None) -> np.ndarray:
        """Mean of a per-position score over each allocation cell, times the ROI weight on ROI cells."""
        cfg = self.cfg
        block = block or cfg.rate_block
        score = allocation.pool_to_blocks(per_position, block, "mean")
        if cfg.use_roi and roi_hw is not None:
            roi_cells = allocation.pool_to_blocks(roi_hw, block, "max")
            score = score * (1.0 + (cfg.roi_rate_weight - 1.0) * roi_cells)
        return score

    @staticmethod
    def strongest_pair_counts(y: torch.Tensor, n_symbols: int) -> np.ndarray:
        """Per latent position, how many of the image's ``n_symbols`` strongest coefficient pairs
        (y channels 2j, 2j+1: what symbol j carries on the linear path) it holds. y: (1, M, h, w).
        An allocation score for what-if experiments (``Codec.allocation_score = "energy"``):
        it sends the largest latent coefficients, which is what an analog linear code wants."""
        e = (y[0, 0::2] ** 2 + y[0, 1::2] ** 2).detach().cpu().numpy()
        flat = np.sort(e.reshape(-1))[::-1]
        threshold = flat[min(max(int(n_symbols), 0), flat.size - 1)]
        return (e > threshold).sum(axis=0).astype(np.float64)

    # ------------------------------------------------------------------ training forward
    def forward(self, x, roi, snr_db, payload_target, channel_fn):
        """x (B,1,H,W) in [0,1] with H, W multiples of 16; roi (B,1,H/16,W/16) float or None;
        snr_db (B,); payload_target (B,) channel uses per image, side info included (as
        ``Codec.encode``'s budget); channel_fn(complex (B,n), snr) -> rx."""
        snr_c = self.effective_snr(snr_db)
        b, _, hh, ww = x.shape
        h, w = hh // DOWNSCALE, ww // DOWNSCALE
        if roi is None:
            roi = torch.zeros(b, 1, h, w, device=x.device)
        y = self.analysis(x, roi, snr_c)
        bpp = torch.zeros(b, device=x.device)
        bits = None
        if self.hyper is not None:
            # The hyperprior is a rate *estimator*: fit it to the latents by maximum likelihood
            # without pushing gradients into g_a (the analog path is scale-invariant after power
            # normalisation, so a rate penalty on y would just shrink y and flatten the estimate).
            bits, bits_z = self.rate(y.detach())
            bpp = Hyperprior.bits_per_pixel(bits, bits_z, hh * ww)
        kmap = self.allocate(bits, roi if self.cfg.use_roi else None, payload_target, (b, h, w)).to(x.device)
        used = self.channel_mask(kmap)
        s = self.jscc_encode(y, roi, snr_c)
        power = self.signal_power(s, used)
        z = self.to_complex(self.power_normalize(s, used, power))
        rx = channel_fn(z.reshape(b, -1), snr_db)
        reliability, snr_d = None, snr_c
        if isinstance(rx, tuple):   # (symbols, per-symbol 1/SNR_i, the SNR the receiver states)
            rx, inv_snr, snr_rx = rx
            reliability = (1.0 / (1.0 + inv_snr)).reshape(z.shape) * used[:, 0::2]
            snr_d = self.effective_snr(snr_rx)
        elif self.cfg.csi_input:    # plain AWGN: y = x + n; a CSI decoder takes MMSE estimates
            rx = self.mmse_scale(rx, snr_db)
        z_rx = rx.reshape(z.shape)
        s_rx = self.from_complex(z_rx) * used
        if self.cfg.linear_path:   # the receiver knows the power factor from the side info
            s_rx = s_rx * power.sqrt()[:, None, None, None]
        y_hat = self.jscc_decode(s_rx, kmap[:, None].float(), roi, snr_d,
                                 reliability if self.cfg.csi_input else None)
        x_hat = self.synthesis(y_hat, snr_d)
        n_symbols = kmap.sum(dim=(1, 2)).float()
        return x_hat, bpp, n_symbols


def build_model(cfg: ModelConfig | dict) -> JSCCModel:
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    return JSCCModel(cfg)
