"""Small numpy/scipy helpers shared by the segmenters: input checks, regions, boxes, scores."""
from __future__ import annotations

import contextlib
import logging
import threading
import warnings

import numpy as np
from scipy import ndimage

from ..errors import InputError

log = logging.getLogger("gnuradio.medjscc.roi")


class RoiFallbackWarning(UserWarning):
    """A segmenter could not find the lungs and fell back to a documented default."""


_QUIET = threading.local()


@contextlib.contextmanager
def fallback_warnings_logged_only():
    """In this thread, a fallback is logged but not raised as a warning (a GNU Radio block's
    handler: ``warnings.catch_warnings`` would change the filters of every thread)."""
    before = getattr(_QUIET, "on", False)
    _QUIET.on = True
    try:
        yield
    finally:
        _QUIET.on = before


def warn_fallback(message: str) -> None:
    if not getattr(_QUIET, "on", False):
        warnings.warn(message, RoiFallbackWarning, stacklevel=3)
    log.warning(message)


def as_gray_float(image, name: str = "image") -> np.ndarray:
    """Validate an image (HxW, HxWx1 or HxWx3; any numeric dtype) -> float32 HxW in [0, 1].

    Intensities are min-max normalised per image, as LiteMedSAM expects. A constant image maps
    to all zeros (callers check ``is_blank`` first).
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        a = a[..., :3].astype(np.float32).mean(axis=2)
    if a.ndim != 2:
        raise InputError(f"{name} must be a 2-D gray image (or HxWx3), got shape {np.shape(image)}")
    if a.shape[0] < 8 or a.shape[1] < 8:
        raise InputError(f"{name} is too small ({a.shape[0]}x{a.shape[1]}); need at least 8x8 pixels")
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise InputError(f"{name} must have a real numeric dtype, got {a.dtype}")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise InputError(f"{name} contains NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if hi - lo <= 1e-12:
        return np.zeros_like(a)
    return (a - lo) / (hi - lo)


def is_blank(image) -> bool:
    """True for a constant image (e.g. all zeros): nothing to segment."""
    a = np.asarray(image)
    return a.size == 0 or float(a.max()) - float(a.min()) <= 1e-12


def whole_image(shape) -> np.ndarray:
    return np.ones(tuple(shape[:2]), dtype=np.bool_)


def regions(mask: np.ndarray, min_area: int = 1, max_regions: int | None = None,
            min_rel_area: float = 0.0) -> list[np.ndarray]:
    """Connected regions (8-connectivity) of a bool mask, largest first, filtered by area."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    areas = np.bincount(labels.ravel())[1:]
    order = np.argsort(-areas)
    largest = areas[order[0]]
    out = []
    for idx in order:
        if areas[idx] < min_area or areas[idx] < min_rel_area * largest:
            break
        out.append(labels == idx + 1)
        if max_regions is not None and len(out) >= max_regions:
            break
    return out


def box_of(mask: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """(x0, y0, x1, y1) of a non-empty mask, grown by ``margin`` pixels and clipped to the image."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return np.array([max(0.0, xs.min() - margin), max(0.0, ys.min() - margin),
                     min(w - 1.0, xs.max() + margin), min(h - 1.0, ys.max() + margin)], dtype=np.float32)


def box_mask(box, shape) -> np.ndarray:
    x0, y0, x1, y1 = box
    m = np.zeros(shape, dtype=np.bool_)
    m[int(np.floor(y0)):int(np.ceil(y1)) + 1, int(np.floor(x0)):int(np.ceil(x1)) + 1] = True
    return m


def clean_mask(mask: np.ndarray, min_area: int = 0) -> np.ndarray:
    """Fill holes and drop specks below ``min_area`` pixels."""
    m = ndimage.binary_fill_holes(mask)
    if min_area > 0:
        kept = regions(m, min_area=min_area)
        m = np.logical_or.reduce(kept) if kept else np.zeros_like(m)
    return m


def dice(pred, truth) -> float:
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    denom = p.sum() + t.sum()
    return 1.0 if denom == 0 else float(2.0 * np.logical_and(p, t).sum() / denom)


def iou(pred, truth) -> float:
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    union = np.logical_or(p, t).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, t).sum() / union)


def overlay(image, mask, color=(255, 60, 60), alpha=0.45) -> np.ndarray:
    """RGB uint8 picture of the image with the mask tinted and its outline drawn."""
    g = (as_gray_float(image) * 255).astype(np.uint8)
    rgb = np.repeat(g[..., None], 3, axis=2).astype(np.float32)
    m = np.asarray(mask, bool)
    tint = np.array(color, np.float32)
    rgb[m] = (1 - alpha) * rgb[m] + alpha * tint
    edge = m & ~ndimage.binary_erosion(m, iterations=1, border_value=0)
    rgb[edge] = tint
    return rgb.clip(0, 255).astype(np.uint8)
