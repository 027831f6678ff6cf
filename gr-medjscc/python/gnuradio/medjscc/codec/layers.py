"""Small composable building blocks of the JSCC transforms (pure torch).

* ``ChannelAdaptiveUnit`` (CAU): ADJSCC "attention feature" module: channel-wise mean of the
  features plus the SNR -> FC -> ReLU -> FC -> sigmoid -> per-channel scales.
* ``DownBlock`` / ``UpBlock``: stride-2 conv + GDN / conv + pixel shuffle + IGDN (x2 each).
* ``ResBlock``: a cheap residual block used at the latent resolution.
* ``PatchKLT``: a linear 16x16 block transform (analysis and synthesis) initialised from the
  principal components of training patches, the fast-converging skip path of ``linear_path``
  models (the nonlinear transforms then learn a correction instead of the whole transform).
* ``FullFrameWavelet``: the full-frame alternative. A CDF 9/7 wavelet transform of the whole
  image (overlapping filters, no block edges) whose 256 coefficients "under" each 16x16 latent
  cell (its spatial-orientation tree: 1 LL, 3 + 12 + 48 + 192 details) are stacked as the
  channels of that cell; the LLs go on through a wavelet over the cell grid, the details through
  a per-cell KLT (1x1). It keeps the per-position latent layout the variable length and ROI
  processing need.
* ``MaskGuide``: mask-guided feature processing on the latent grid: ROI cells keep full
  fidelity, non-ROI cells get a learned per-channel scaling (coarser features, lower entropy,
  so fewer channel symbols) plus a mask-conditioned bias.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from compressai.layers import GDN

# The SNR range one model serves (dB); inputs outside it are clamped by the API.
SNR_MIN_DB = -5.0
SNR_MAX_DB = 25.0


def snr_feature(snr_db: torch.Tensor) -> torch.Tensor:
    """Map SNR (dB, shape (B,)) to a centred feature in about [-1, 1]."""
    mid = 0.5 * (SNR_MIN_DB + SNR_MAX_DB)
    half = 0.5 * (SNR_MAX_DB - SNR_MIN_DB)
    return ((snr_db - mid) / half).unsqueeze(1)


class ChannelAdaptiveUnit(nn.Module):
    """SNR-conditioned channel recalibration (pooled features + SNR -> FC -> FC -> sigmoid)."""

    def __init__(self, channels: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or max(8, channels // 4)
        self.fc1 = nn.Linear(channels + 1, hidden)
        self.fc2 = nn.Linear(hidden, channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))
        z = torch.cat([pooled, snr_feature(snr_db).to(x.dtype)], dim=1)
        scale = torch.sigmoid(self.fc2(self.act(self.fc1(z))))
        # 2*sigmoid keeps the unit an identity at initialisation (sigmoid(0) = 0.5)
        return x * (2.0 * scale)[:, :, None, None]


class NoCAU(nn.Module):
    """Drop-in stand-in for ablations without channel adaptation."""

    def forward(self, x, snr_db):
        return x


def make_cau(enabled: bool, channels: int) -> nn.Module:
    return ChannelAdaptiveUnit(channels) if enabled else NoCAU()


class DownBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 3, gdn: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=2, padding=kernel // 2)
        self.norm = GDN(cout) if gdn else nn.Identity()

    def forward(self, x):
        return self.norm(self.conv(x))


class UpBlock(nn.Module):
    """Sub-pixel upsampling x2 (conv then pixel shuffle): cheaper than a transposed conv."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, igdn: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, kernel, padding=kernel // 2)
        self.shuffle = nn.PixelShuffle(2)
        self.norm = GDN(cout, inverse=True) if igdn else nn.Identity()

    def forward(self, x):
        return self.norm(self.shuffle(self.conv(x)))


class ResBlock(nn.Module):
    """Residual block; 1x1 kernels by default (cheap at the latent resolution)."""

    def __init__(self, channels: int, kernel: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x):
        return x + self.conv2(self.act(self.conv1(x)))


class MaskGuide(nn.Module):
    """ROI cells pass unchanged; non-ROI cells are scaled by learned per-channel factors in
    (0, 1] (encoder) or (1, ...) (decoder, ``inverse=True``) and shifted by a mask-driven bias."""

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        # sigmoid(1.0) ~ 0.73: start mildly coarser outside the ROI
        self.bg_logit = nn.Parameter(torch.full((channels,), 1.0))
        self.bias = nn.Conv2d(1, channels, 1)
        nn.init.zeros_(self.bias.weight)
        nn.init.zeros_(self.bias.bias)

    def forward(self, x: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
        bg_scale = torch.sigmoid(self.bg_logit)[None, :, None, None]
        if self.inverse:
            bg_scale = 1.0 / bg_scale.clamp_min(1e-3)
        scale = roi + (1.0 - roi) * bg_scale
        return x * scale + self.bias(roi)


class PatchKLT(nn.Module):
    """Linear block transform on non-overlapping 16x16 patches: ``analysis`` gives ``channels``
    coefficients per patch, ``synthesis`` maps them back and adds the mean patch. Both start as
    the Karhunen-Loeve transform (patch PCA, ``init_from_patches``) and stay trainable."""

    def __init__(self, channels: int, patch: int = 16):
        super().__init__()
        self.patch = patch
        self.analysis_conv = nn.Conv2d(1, channels, patch, stride=patch, bias=False)
        self.synthesis_conv = nn.ConvTranspose2d(channels, 1, patch, stride=patch, bias=False)
        self.mean = nn.Parameter(torch.zeros(1, 1, patch, patch))
        # patch-PCA variances of the kept components (SoftCast-style gain initialisation)
        self.register_buffer("variances", torch.ones(channels))

    @torch.no_grad()
    def init_from_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """Set the basis from (N, patch*patch) training patches; returns the kept variances."""
        p = self.patch
        x = patches.double().reshape(-1, p * p)
        mu = x.mean(0)
        cov = (x - mu).T @ (x - mu) / max(1, x.shape[0] - 1)
        evals, evecs = torch.linalg.eigh(cov)
        order = torch.argsort(evals, descending=True)[: self.analysis_conv.out_channels]
        basis = evecs[:, order].T.reshape(-1, 1, p, p).float()     # (C, 1, p, p), orthonormal rows
        self.analysis_conv.weight.copy_(basis)
        self.synthesis_conv.weight.copy_(basis)
        self.mean.copy_(mu.reshape(1, 1, p, p).float())
        self.variances.copy_(evals[order].clamp_min(1e-12).float())
        return self.variances.clone()

    def _tiled_mean(self, h: int, w: int) -> torch.Tensor:
        return self.mean.repeat(1, 1, h // self.patch, w // self.patch)

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        return self.analysis_conv(x - self._tiled_mean(*x.shape[-2:]))

    def synthesis(self, y: torch.Tensor) -> torch.Tensor:
        out = self.synthesis_conv(y)
        return out + self._tiled_mean(*out.shape[-2:])


# CDF 9/7 lifting constants (the JPEG2000 irreversible wavelet); the scaling makes the transform
# close to orthonormal, so white noise on the coefficients maps to about the same pixel MSE.
_CDF97_LIFT = (-1.586134342059924, -0.052980118572961, 0.882911075530934, 0.443506852043971)
_CDF97_K = 1.230174104914001
WAVELET_LEVELS = 4   # 2**4 = the latent grid's downscale


def _lift_pairs(s: torch.Tensor, d: torch.Tensor, inverse: bool):
    """The four lifting steps on even (s) / odd (d) samples along the last dim, with whole-sample
    symmetric extension at both ends (x[-1] = x[1], x[L] = x[L-2]); exactly invertible."""
    def nxt(v):
        return torch.cat([v[..., 1:], v[..., -1:]], -1)

    def prv(v):
        return torch.cat([v[..., :1], v[..., :-1]], -1)

    a, b, c, e = _CDF97_LIFT
    if not inverse:
        d = d + a * (s + nxt(s))
        s = s + b * (prv(d) + d)
        d = d + c * (s + nxt(s))
        s = s + e * (prv(d) + d)
        return s * (2 ** 0.5 / _CDF97_K), d * (_CDF97_K / 2 ** 0.5)
    s, d = s / (2 ** 0.5 / _CDF97_K), d / (_CDF97_K / 2 ** 0.5)
    s = s - e * (prv(d) + d)
    d = d - c * (s + nxt(s))
    s = s - b * (prv(d) + d)
    d = d - a * (s + nxt(s))
    return s, d


def _dwt_last(x):
    return _lift_pairs(x[..., 0::2], x[..., 1::2], inverse=False)


def _idwt_last(lo, hi):
    s, d = _lift_pairs(lo, hi, inverse=True)
    return torch.stack([s, d], -1).flatten(-2)


def dwt2(x: torch.Tensor):
    """One 2-D level on (B, C, H, W), H and W even -> (LL, (LH, HL, HH)), each (B, C, H/2, W/2)."""
    lo, hi = _dwt_last(x)
    ll, lh = _dwt_last(lo.transpose(-1, -2))
    hl, hh = _dwt_last(hi.transpose(-1, -2))
    return ll.transpose(-1, -2), (lh.transpose(-1, -2), hl.transpose(-1, -2), hh.transpose(-1, -2))


def idwt2(ll, details):
    lh, hl, hh = details
    lo = _idwt_last(ll.transpose(-1, -2), lh.transpose(-1, -2)).transpose(-1, -2)
    hi = _idwt_last(hl.transpose(-1, -2), hh.transpose(-1, -2)).transpose(-1, -2)
    return _idwt_last(lo, hi)


def wavelet_trees(x: torch.Tensor, levels: int = WAVELET_LEVELS) -> torch.Tensor:
    """(B, 1, H, W), H and W multiples of 2**levels -> (B, 4**levels, H/2**levels, W/2**levels):
    per cell, its LL coefficient, then the coarsest to the finest details (each level's three
    bands, each band's 2x2, 4x4, ... block in raster order)."""
    parts, ll = [], x
    for lev in range(levels):
        ll, details = dwt2(ll)
        r = 2 ** (levels - 1 - lev)   # this level's blocks per cell side
        parts.append(torch.cat([nn.functional.pixel_unshuffle(band, r) for band in details], 1))
    return torch.cat([ll] + parts[::-1], 1)


def inverse_wavelet_trees(t: torch.Tensor, levels: int = WAVELET_LEVELS) -> torch.Tensor:
    """Inverse of ``wavelet_trees``."""
    ll, at = t[:, :1], 1
    for lev in reversed(range(levels)):
        r = 2 ** (levels - 1 - lev)
        n = r * r
        bands = [nn.functional.pixel_shuffle(t[:, at + i * n: at + (i + 1) * n], r) for i in range(3)]
        at += 3 * n
        ll = idwt2(ll, bands)
    return ll


def coarse_dwt(x: torch.Tensor):
    """In-place multi-level wavelet of a (B, C, h, w) map, down to where a side is odd or 1: each
    coefficient stays on the grid inside its support (LL at the even-even cell, LH/HL/HH beside
    it, coarser levels on the LL cells). -> (same shape, level map (h, w) long: 0 = finest details,
    then 1, ...; the final LL gets one past the last level)."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2 or min(h, w) < 2:
        return x, torch.zeros(h, w, dtype=torch.long)
    ll, (lh, hl, hh) = dwt2(x)
    ll, inner = coarse_dwt(ll)
    out = nn.functional.pixel_shuffle(torch.stack([ll, lh, hl, hh], 2).flatten(1, 2), 2)
    level = torch.zeros(h, w, dtype=torch.long)
    level[0::2, 0::2] = inner + 1
    return out, level


def inverse_coarse_dwt(t: torch.Tensor) -> torch.Tensor:
    h, w = t.shape[-2:]
    if h % 2 or w % 2 or min(h, w) < 2:
        return t
    parts = nn.functional.pixel_unshuffle(t, 2).unflatten(1, (t.shape[1], 4))
    ll = inverse_coarse_dwt(parts[:, :, 0])
    return idwt2(ll, (parts[:, :, 1], parts[:, :, 2], parts[:, :, 3]))


def coarse_units(h: int, w: int) -> torch.Tensor:
    """(h, w) subband label of each ``coarse_dwt`` coefficient: 3 * level + band (LH, HL, HH),
    counted from the finest level (the same on every grid), and the final LL one past the rest
    (which depends on the grid: ``coarse_unit_labels`` gives it one label)."""
    level = coarse_dwt(torch.zeros(1, 1, h, w))[1]
    # on its level's grid (every 2**level-th cell) a detail sits at (even, odd): LH, (odd, even):
    # HL, (odd, odd): HH
    a = torch.div(torch.arange(h)[:, None], 2 ** level, rounding_mode="floor") % 2
    b = torch.div(torch.arange(w)[None, :], 2 ** level, rounding_mode="floor") % 2
    band = torch.where(a == 0, 0, torch.where(b == 0, 1, 2))
    top = int(level.max())
    return torch.where(level == top, 3 * top, 3 * level + band)


COARSE_LL_UNIT = 3 * 8   # coarse_units' label of the final LL, whatever the grid size


def coarse_unit_labels(h: int, w: int) -> torch.Tensor:
    """``coarse_units`` with the final LL at ``COARSE_LL_UNIT``: labels that mean the same subband
    on every grid size (a 128-pixel training crop and a 512-pixel image). Details beyond 8 levels
    (a grid over 256 cells a side) share the 8th level's labels."""
    lab = coarse_units(h, w)
    ll = lab == lab.max()
    lab = torch.where(lab >= COARSE_LL_UNIT, COARSE_LL_UNIT - 3 + lab % 3, lab)
    return torch.where(ll, torch.full_like(lab, COARSE_LL_UNIT), lab)


class FullFrameWavelet(nn.Module):
    """Full-frame linear transform with one coefficient vector per 16x16 cell (the layout the JSCC
    latents have): ``wavelet_trees`` of the whole image minus a per-coefficient mean, then
    channel 0 (each cell's LL) goes on through ``coarse_dwt`` over the cell grid, so the image's
    coarse structure is decorrelated across cells (what a full-frame DCT gets and a per-cell
    transform cannot), and the 255 detail coefficients of each tree get a per-cell KLT (1x1,
    PCA of the training trees, trainable) to ``channels - 1`` coefficients.

    Channel 0's variance depends on the subband a cell holds (the DC of the whole image vs a fine
    detail), which a per-channel gain cannot follow: it is scaled per subband by
    (var / var_channel0)^-1/4, SoftCast's gain law, and ``variances[0]`` reports var_channel0,
    so a per-channel gain var^-1/4 downstream completes the law. ``synthesis`` inverts all of it
    (exactly at init)."""

    def __init__(self, channels: int, cell: int = 16):
        super().__init__()
        levels = int(round(math.log2(cell)))
        if 2 ** levels != cell or channels < 2:
            raise ValueError(f"cell must be a power of two and channels >= 2, got {cell}, {channels}")
        self.levels, n = levels, cell * cell
        self.analysis_conv = nn.Conv2d(n - 1, channels - 1, 1, bias=False)
        self.synthesis_conv = nn.ConvTranspose2d(channels - 1, n - 1, 1, bias=False)
        self.mean = nn.Parameter(torch.zeros(1, n, 1, 1))
        self.register_buffer("variances", torch.ones(channels))
        self.register_buffer("coarse_var", torch.ones(COARSE_LL_UNIT + 1))   # per coarse subband label

    def _gain(self, h: int, w: int, device) -> torch.Tensor:
        lab = coarse_unit_labels(h, w).to(device)
        return (self.coarse_var[lab] / self.variances[0]).clamp_min(1e-12) ** -0.25

    @torch.no_grad()
    def init_from_images(self, images) -> torch.Tensor:
        """Set mean, subband variances and KLT from training images ((H, W) arrays, sides multiples
        of the cell); returns the per-channel variances the gains start from."""
        trees = [wavelet_trees(torch.as_tensor(im, dtype=torch.float64)[None, None], self.levels)[0]
                 for im in images]
        mu = torch.cat([t.flatten(1) for t in trees], 1).mean(1)
        coarse = torch.zeros(COARSE_LL_UNIT + 1, dtype=torch.float64)
        count = torch.zeros_like(coarse)
        for t in trees:
            c0 = coarse_dwt((t[:1] - mu[0])[None])[0][0, 0]
            lab = coarse_unit_labels(*c0.shape)
            coarse.index_add_(0, lab.flatten(), c0.flatten() ** 2)
            count.index_add_(0, lab.flatten(), torch.ones(c0.numel(), dtype=torch.float64))
        seen = count > 0
        coarse = torch.where(seen, coarse / count.clamp_min(1), coarse)
        for u in range(COARSE_LL_UNIT):   # a level no training image reaches: its band at the deepest seen level
            if not seen[u]:
                same_band = [v for v in range(u % 3, COARSE_LL_UNIT, 3) if seen[v] and v < u]
                coarse[u] = coarse[same_band[-1]] if same_band else coarse[seen].mean()
        x = torch.cat([t[1:].flatten(1).T for t in trees]) - mu[1:]
        cov = x.T @ x / max(1, x.shape[0] - 1)
        evals, evecs = torch.linalg.eigh(cov)
        order = torch.argsort(evals, descending=True)[: self.analysis_conv.out_channels]
        basis = evecs[:, order].T.float()[:, :, None, None]
        self.analysis_conv.weight.copy_(basis)
        self.synthesis_conv.weight.copy_(basis)
        self.mean.copy_(mu.reshape(1, -1, 1, 1).float())
        self.coarse_var.copy_(coarse.clamp_min(1e-12).float())
        c0_var = float(sum(float((t[0] - mu[0]).pow(2).sum()) for t in trees) / sum(t[0].numel() for t in trees))
        self.variances.copy_(torch.cat([torch.tensor([c0_var]), evals[order].clamp_min(1e-12)]).float())
        return self.variances.clone()

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        t = wavelet_trees(x, self.levels) - self.mean
        c0, _ = coarse_dwt(t[:, :1])
        return torch.cat([c0 * self._gain(*c0.shape[-2:], x.device), self.analysis_conv(t[:, 1:])], 1)

    def synthesis(self, y: torch.Tensor) -> torch.Tensor:
        c0 = inverse_coarse_dwt(y[:, :1] / self._gain(*y.shape[-2:], y.device))
        t = torch.cat([c0, self.synthesis_conv(y[:, 1:])], 1) + self.mean
        return inverse_wavelet_trees(t, self.levels)
