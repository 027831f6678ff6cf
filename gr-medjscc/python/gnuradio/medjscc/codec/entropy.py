"""Mean-scale hyperprior used as a *rate estimator* (NTSCC-style).

CompressAI's ``EntropyBottleneck`` models the hyper-latent z, its ``GaussianConditional`` the
latent y given (mean, scale) predicted from z. ``-log2 p(y)`` per latent position tells the
variable-length JSCC encoder how many channel symbols each position deserves. z itself is not
transmitted: only the resulting rate indices travel (digitally) as side info.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from compressai.entropy_models import EntropyBottleneck, GaussianConditional


class Hyperprior(nn.Module):
    def __init__(self, latent_channels: int, hyper_channels: int = 64):
        super().__init__()
        m, n = latent_channels, hyper_channels
        self.h_a = nn.Sequential(
            nn.Conv2d(m, n, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(n, n, 3, stride=2, padding=1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(n, n, 3, stride=2, padding=1),
        )
        self.h_s = nn.Sequential(
            nn.ConvTranspose2d(n, n, 3, stride=2, padding=1, output_padding=1), nn.LeakyReLU(0.1, inplace=True),
            nn.ConvTranspose2d(n, n, 3, stride=2, padding=1, output_padding=1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(n, 2 * m, 3, padding=1),
        )
        self.entropy_bottleneck = EntropyBottleneck(n)
        self.gaussian_conditional = GaussianConditional(None)

    def forward(self, y: torch.Tensor):
        """Return (bits per latent position (B, h, w), hyper-latent bits per image (B,))."""
        h, w = y.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        y_pad = F.pad(y, (0, pw, 0, ph), mode="replicate") if (ph or pw) else y
        z = self.h_a(y_pad)
        z_hat, z_lik = self.entropy_bottleneck(z)
        scales, means = self.h_s(z_hat).chunk(2, dim=1)
        _, y_lik = self.gaussian_conditional(y_pad, scales, means=means)
        bits_y = -torch.log2(y_lik).sum(dim=1)[:, :h, :w]
        bits_z = -torch.log2(z_lik).sum(dim=(1, 2, 3))
        return bits_y, bits_z

    @staticmethod
    def bits_per_pixel(bits_y: torch.Tensor, bits_z: torch.Tensor, n_pixels: int) -> torch.Tensor:
        return (bits_y.sum(dim=(1, 2)) + bits_z) / float(n_pixels)


def log2_levels(levels) -> int:
    return max(1, math.ceil(math.log2(len(levels))))
