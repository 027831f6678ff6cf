"""Lesion-aware training: nodule pairs and a signal-transfer loss (issue #15's optional item).

The nodule task (``evaluation.task``) asks whether an observer can still tell a signal-present
image from a signal-absent one after the channel. What it needs from the codec is the nodule's
signal, the difference between the two images at the nodule, carried through. PSNR barely sees
it: a 5-15 mm nodule is a few hundred pixels of a few grey levels. Training pairs are rendered
from the **train** split (``data.nodules``, views disjoint from the test split by yaw band); each
step crops present and absent images of the same view around the nodule and sends both through
the channel, and

    signal_transfer_loss = sum_w (G(x̂_p - x̂_a) - G(x_p - x_a))^2 / sum_w G(x_p - x_a)^2

over a disc ``window`` nodule radii wide (G: a 1.5 px Gaussian blur; the renderings' independent
quantum noise is no signal): how much of the nodule's signal the codec loses, relative to the
signal itself. The absent image of a pair goes through the present one's channel draw (the
training loop transplants it), so the difference is the codec's transfer of the nodule, not two
noise draws. ``train.lesion_weight`` scales it into the loss.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import MedJSCCError

SIGNAL_SIGMA_PX = 1.5   # nodule-scale smoothing of the signal (nodules: radius ~2-7 px at 256 px)


class LesionBatches:
    """Random crops of present/absent nodule pairs, each crop containing the whole nodule window."""

    def __init__(self, root, crop: int, rng: np.random.Generator, split: str = "train",
                 limit: int | None = None, window: float = 2.0):
        from ..data.folder import read_image, read_mask
        from ..data.nodules import load_pairs

        root = Path(root)
        recs = load_pairs(root, split, limit)
        d = root / split
        self.present = np.stack([read_image(d / "images" / f"{r['present']}.png") for r in recs])
        self.absent = np.stack([read_image(d / "images" / f"{r['absent']}.png") for r in recs])
        self.masks = np.stack([read_mask(d / "masks" / f"{r['present']}.png") > 0 for r in recs])
        self.centres = np.array([r["nodule"]["centre_px"] for r in recs], np.float64)
        self.radii = np.array([r["nodule"]["radius_px"] for r in recs], np.float64)
        self.crop, self.rng, self.window = int(crop), rng, float(window)
        h, w = self.present.shape[1:]
        if h < crop or w < crop:
            raise MedJSCCError(f"nodule images ({h}x{w}) are smaller than the crop {crop}")

    def __len__(self) -> int:
        return len(self.present)

    def sample(self, k: int):
        """-> x_p, x_a, roi mask, nodule window (k, 1, crop, crop) float tensors."""
        n, h, w = self.present.shape
        c = self.crop
        idx = self.rng.integers(0, n, k)
        out = {"p": [], "a": [], "m": [], "w": []}
        yy, xx = np.mgrid[0:c, 0:c]
        for i in idx:
            cy, cx = self.centres[i]
            reach = min(self.window * self.radii[i] + 1, c / 2 - 1)
            y0 = int(self.rng.integers(max(0, int(np.ceil(cy + reach)) - c + 1), min(h - c, int(cy - reach)) + 1))
            x0 = int(self.rng.integers(max(0, int(np.ceil(cx + reach)) - c + 1), min(w - c, int(cx - reach)) + 1))
            win = (yy + y0 - cy) ** 2 + (xx + x0 - cx) ** 2 <= (self.window * self.radii[i]) ** 2
            flip = self.rng.random() < 0.5
            for key, arr in (("p", self.present[i]), ("a", self.absent[i]), ("m", self.masks[i])):
                a = arr[y0:y0 + c, x0:x0 + c]
                out[key].append(a[:, ::-1] if flip else a)
            out["w"].append(win[:, ::-1] if flip else win)

        def t(key, scale=1.0):
            return torch.from_numpy(np.stack(out[key]).astype(np.float32) * scale)[:, None]

        return t("p", 1 / 255.0), t("a", 1 / 255.0), t("m"), t("w")


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, 1, H, W), zero padding (the window keeps away from edges)."""
    if sigma <= 0:
        return x
    r = max(1, int(math.ceil(3 * sigma)))
    g = torch.exp(-torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    x = F.conv2d(x, g.view(1, 1, 1, -1), padding=(0, r))
    return F.conv2d(x, g.view(1, 1, -1, 1), padding=(r, 0))


def signal_transfer_loss(xp_hat: torch.Tensor, xa_hat: torch.Tensor, xp: torch.Tensor, xa: torch.Tensor,
                         window: torch.Tensor, sigma: float = SIGNAL_SIGMA_PX) -> torch.Tensor:
    """Mean over pairs of the nodule signal's error energy in the window, relative to the signal's.
    Both differences are blurred by ``sigma`` px first: the two renderings carry independent
    quantum noise, which is not the nodule and no codec could carry."""
    sig = gaussian_blur(xp - xa, sigma) * window
    err = (gaussian_blur(xp_hat - xa_hat, sigma) * window - sig) ** 2
    return (err.sum(dim=(1, 2, 3)) / (sig ** 2).sum(dim=(1, 2, 3)).clamp_min(1e-9)).mean()
