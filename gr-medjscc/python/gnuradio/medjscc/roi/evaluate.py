"""Segmenter evaluation against ground-truth lung masks (``medjscc roi-eval``).

``evaluate(backend, split="test", limit=None, prompt="none"|"gt-boxes")`` returns one dict with
``backend, dice_mean, dice_min, iou_mean, seconds_per_image, n_images`` plus details (prompt
mode, side-info bits of the predicted masks on the 16x16 grid, fallbacks). ``gt-boxes`` prompts
the model with one box per connected ground-truth region (tight box grown by ``box_margin`` of
the image size), the usual protocol for box-prompted SAM models; ``litemedsam`` and ``sam2``
default to it, ``auto`` and ``oracle`` use no prompt.
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from ..errors import InputError
from .imageutil import RoiFallbackWarning, box_of, dice, iou, regions
from .sideinfo import default_grid, mask_bits, mask_to_grid


def gt_boxes(mask: np.ndarray, box_margin: float = 0.0) -> np.ndarray:
    h, w = mask.shape
    parts = regions(mask, min_area=max(1, int(0.002 * h * w)))
    if not parts:
        return np.zeros((0, 4), np.float32)
    return np.stack([box_of(p, box_margin * max(h, w)) for p in parts])


def evaluate(backend: str = "auto", split: str = "test", limit: int | None = None, root=None,
             prompt: str | None = None, box_margin: float = 0.0, segmenter=None, **seg_kw) -> dict:
    from ..data import load_split
    from .segmenters import get_segmenter

    if prompt is None:
        prompt = "gt-boxes" if backend in ("litemedsam", "sam2") else "none"
    if prompt not in ("none", "gt-boxes"):
        raise InputError(f"--prompt must be none or gt-boxes, got {prompt!r}")
    seg = segmenter if segmenter is not None else get_segmenter(backend, data_root=root, **seg_kw)
    ds = load_split(split, root=root, limit=limit)
    if len(ds) == 0:
        raise InputError(f"split {split!r} has no images")
    dices, ious, bits, seconds, fallbacks, sources = [], [], [], [], 0, {}
    for i in range(len(ds)):
        item = ds[i]
        truth = item.get("mask")
        if truth is None:
            raise InputError(f"{item.get('source_path', item['name'])}: no ground-truth mask")
        truth = np.asarray(truth, bool)
        kwargs = {}
        p = gt_boxes(truth, box_margin) if prompt == "gt-boxes" else None
        if backend == "oracle":
            kwargs["source_path"] = item.get("source_path")
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RoiFallbackWarning)
            pred = seg.segment(item["image"], p, **kwargs) if kwargs else seg.segment(item["image"], p)
        seconds.append(time.perf_counter() - t0)
        fallbacks += any(issubclass(c.category, RoiFallbackWarning) for c in caught)
        src = (getattr(seg, "last_info", {}) or {}).get("source", "")
        sources[src] = sources.get(src, 0) + 1
        dices.append(dice(pred, truth))
        ious.append(iou(pred, truth))
        bits.append(mask_bits(mask_to_grid(pred, default_grid(pred.shape))))
    return {
        "backend": backend, "dice_mean": float(np.mean(dices)), "dice_min": float(np.min(dices)),
        "iou_mean": float(np.mean(ious)), "seconds_per_image": float(np.mean(seconds)),
        "n_images": len(ds), "split": split, "prompt": prompt,
        "dice_median": float(np.median(dices)),
        "side_info_bits_mean": float(np.mean(bits)), "side_info_bits_max": int(np.max(bits)),
        "fallbacks": int(fallbacks), "sources": sources,
    }
