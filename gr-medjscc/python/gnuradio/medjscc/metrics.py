"""Image quality metrics shared by codec, PHY and evaluation.

PSNR uses an 8-bit peak of 255 after clipping to [0, 255]; ROI-PSNR is the PSNR over the
ground-truth mask pixels only; MS-SSIM/SSIM come from ``pytorch-msssim``.
Images are float or uint8 arrays in [0, 255] (HxW); float inputs in [0, 1] must be scaled by
the caller (``to_uint8_range``).
"""
from __future__ import annotations

import math

import numpy as np

PEAK = 255.0
# PSNR reported for a bit-exact reconstruction (MSE = 0) so tables stay finite.
PSNR_CAP_DB = 100.0


def _as_float255(img) -> np.ndarray:
    a = np.asarray(img, dtype=np.float64)
    return np.clip(a, 0.0, PEAK)


def to_uint8_range(img01) -> np.ndarray:
    """[0, 1] float image -> [0, 255] float (rounded as an 8-bit display would be)."""
    return np.round(np.clip(np.asarray(img01, dtype=np.float64), 0, 1) * PEAK)


def mse(ref, test, mask=None) -> float:
    r, t = _as_float255(ref), _as_float255(test)
    if r.shape != t.shape:
        raise ValueError(f"image shapes differ: {r.shape} vs {t.shape}")
    d = (r - t) ** 2
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != r.shape:
            raise ValueError(f"mask shape {m.shape} differs from image shape {r.shape}")
        if not m.any():
            raise ValueError("ROI mask is empty")
        d = d[m]
    return float(d.mean())


def psnr(ref, test, mask=None) -> float:
    """PSNR in dB (peak 255); with ``mask`` only masked pixels count (ROI-PSNR)."""
    e = mse(ref, test, mask)
    return PSNR_CAP_DB if e == 0 else min(PSNR_CAP_DB, 10.0 * math.log10(PEAK**2 / e))


def roi_psnr(ref, test, mask) -> float:
    return psnr(ref, test, mask)


def _to_tensor(img):
    import torch

    a = _as_float255(img)
    if a.ndim != 2:
        raise ValueError(f"expected a grayscale HxW image, got shape {a.shape}")
    return torch.from_numpy(a).float()[None, None]


def ssim(ref, test) -> float:
    from pytorch_msssim import ssim as _ssim

    return float(_ssim(_to_tensor(ref), _to_tensor(test), data_range=PEAK, size_average=True))


def ms_ssim(ref, test) -> float:
    """MS-SSIM (5 scales, standard weights). pytorch-msssim needs the smaller side to exceed
    (win - 1) * 16; smaller images use the largest odd Gaussian window that fits (>= 3), and
    images under 49 px fall back to single-scale SSIM with a small window."""
    from pytorch_msssim import ms_ssim as _ms_ssim
    from pytorch_msssim import ssim as _ssim

    r, t = _to_tensor(ref), _to_tensor(test)
    side = min(r.shape[-2:])
    win = 11
    while win > 3 and side <= (win - 1) * 16:
        win -= 2
    if side <= (win - 1) * 16:
        w = max(3, min(7, side - (1 - side % 2)))
        return float(_ssim(r, t, data_range=PEAK, size_average=True, win_size=w))
    return float(_ms_ssim(r, t, data_range=PEAK, size_average=True, win_size=win))


def image_metrics(ref, test, mask=None) -> dict:
    """PSNR, ROI-PSNR (when a non-empty mask is given) and MS-SSIM of one image."""
    out = {"psnr": psnr(ref, test), "ms_ssim": ms_ssim(ref, test)}
    if mask is not None and np.asarray(mask, dtype=bool).any():
        out["roi_psnr"] = roi_psnr(ref, test, mask)
    else:
        out["roi_psnr"] = float("nan")
    return out
