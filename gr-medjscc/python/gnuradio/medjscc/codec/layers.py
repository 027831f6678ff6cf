"""Small composable building blocks of the JSCC transforms (pure torch).

* ``ChannelAdaptiveUnit`` (CAU): ADJSCC "attention feature" module: channel-wise mean of the
  features plus the SNR -> FC -> ReLU -> FC -> sigmoid -> per-channel scales.
* ``DownBlock`` / ``UpBlock``: stride-2 conv + GDN / conv + pixel shuffle + IGDN (x2 each).
* ``ResBlock``: a cheap residual block used at the latent resolution.
* ``PatchKLT``: a linear 16x16 block transform (analysis and synthesis) initialised from the
  principal components of training patches, the fast-converging skip path of ``linear_path``
  models (the nonlinear transforms then learn a correction instead of the whole transform).
* ``MaskGuide``: mask-guided feature processing on the latent grid: ROI cells keep full
  fidelity, non-ROI cells get a learned per-channel scaling (coarser features, lower entropy,
  so fewer channel symbols) plus a mask-conditioned bias.
"""
from __future__ import annotations

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
