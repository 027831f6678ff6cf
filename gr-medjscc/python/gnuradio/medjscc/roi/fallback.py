"""Threshold-and-morphology lung finder: the prompt source when the coarse model is unsure.

Lungs hold air, so on a radiograph they are large dark areas in the upper-middle of the image.
Steps: smooth; Otsu threshold (scaled by ``level``) gives the dark pixels; blank the side strips
(air beside the patient, which otherwise connects to the lung apices) and the top rows; open
with a disk to cut thin bridges; drop regions touching the bottom edge (abdominal air / outside);
keep the two largest regions; grow them back inside the dark pixels; fill holes.

It is crude (mean Dice 0.65 on the DRR val split, where the coarse model reaches ~0.97); it only
has to give LiteMedSAM sensible boxes when the coarse model is unsure.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .imageutil import regions


def otsu_threshold(values: np.ndarray, bins: int = 128) -> float:
    hist, edges = np.histogram(values, bins=bins, range=(float(values.min()), float(values.max()) + 1e-6))
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers) / np.maximum(w0, 1)
    m1 = (np.sum(hist * centers) - np.cumsum(hist * centers)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centers[int(np.argmax(between[:-1]))])


def _disk(r: int) -> np.ndarray:
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r


def threshold_lungs(image01: np.ndarray, max_regions: int = 2, level: float = 0.9,
                    side: float = 0.1) -> np.ndarray:
    """Bool HxW lung estimate (may be empty) from a float image in [0, 1]."""
    h, w = image01.shape
    scale = max(h, w) / 256.0
    radius = max(1, int(round(5 * scale)))
    smooth = ndimage.gaussian_filter(image01, sigma=2.0 * scale)
    if float(smooth.max() - smooth.min()) < 1e-6:
        return np.zeros((h, w), bool)
    dark = smooth < otsu_threshold(smooth) * level
    core = dark.copy()
    s = int(side * w)
    core[:, :s] = False
    core[:, w - s:] = False
    core[:max(1, int(0.02 * h))] = False
    core = ndimage.binary_opening(core, structure=_disk(radius))
    labels, n = ndimage.label(core)
    if n == 0:
        return np.zeros((h, w), bool)
    bottom = np.unique(labels[-1][labels[-1] > 0])
    core &= ~np.isin(labels, bottom)
    kept = regions(core, min_area=int(0.01 * h * w), max_regions=max_regions, min_rel_area=0.2)
    if not kept:
        return np.zeros((h, w), bool)
    m = ndimage.binary_dilation(np.logical_or.reduce(kept), structure=_disk(radius)) & dark
    return ndimage.binary_fill_holes(m)
