"""Image/mask pairs for training and evaluation, read with the data package's one image reader.

Layouts: ``ROOT/<split>/images`` (+ ``masks/``), ``ROOT/images`` (+ ``masks/``), or a flat folder
of images (no masks). Images and masks are read by :mod:`gnuradio.medjscc.data.folder` (PNG, JPEG,
TIFF, BMP, PGM and DICOM; masks: any non-zero pixel is ROI; a mask of another size than its image,
an image below 16x16 and NaN/inf pixels are errors naming the file). Images keep their native
size here: the codec pads to its patch grid, and training takes crops.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.folder import IMAGE_EXTS, ImageFolderDataset, read_image
from ..errors import InputError


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))


def _resolve(root: Path, split: str | None) -> Path:
    cands = [root / split / "images"] if split else []
    cands += [root / "images", root]
    for c in cands:
        if c.is_dir() and _images_in(c):
            return c
    raise InputError(f"no images ({', '.join(IMAGE_EXTS)}) found under {root} "
                     f"(looked in {', '.join(str(c) for c in cands)})")


def load_pairs(root: str | Path | None = None, split: str | None = "test", limit: int | None = None):
    """List of dicts(name, image uint8 HxW, mask bool HxW or None, source_path), sorted by name."""
    from ..paths import default_data_dir

    if root is None:
        root = default_data_dir()
        if not (Path(root) / (split or "")).is_dir():
            try:
                from ..data import ensure_drr_dataset

                root = ensure_drr_dataset()
            except ImportError:
                pass
    root = Path(root)
    if not root.exists():
        raise InputError(f"data folder not found: {root}")
    if limit is not None and int(limit) < 1:
        raise InputError(f"limit must be >= 1, got {limit}")
    img_dir = _resolve(root, split)
    if img_dir.name == "images":   # images/ + masks/: the data set class matches masks by stem
        ds = ImageFolderDataset(img_dir.parent, size=None, resize="none", limit=limit)
        return [{"name": it["name"], "image": it["image"], "mask": it["mask"],
                 "source_path": it["source_path"]} for it in ds]
    files = _images_in(img_dir)[: None if limit is None else int(limit)]
    return [{"name": p.stem, "image": read_image(p), "mask": None, "source_path": str(p)} for p in files]


def synthetic_pairs(n: int, size: int = 256, seed: int = 0):
    """Chest-X-ray-like test pattern (two dark 'lungs' in a bright body) for smoke tests."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for i in range(n):
        cx, cy = 0.5 + rng.normal(0, 0.03), 0.5 + rng.normal(0, 0.03)
        body = np.exp(-(((xx - cx) / 0.38) ** 4 + ((yy - cy) / 0.45) ** 4))
        lungs = np.zeros_like(body, dtype=bool)
        for sx in (-0.17, 0.17):
            lungs |= ((xx - cx - sx) / 0.12) ** 2 + ((yy - cy + 0.02) / 0.25) ** 2 < 1
        img = 40 + 170 * body - 70 * lungs + rng.normal(0, 4, body.shape)
        img += 15 * np.sin(2 * np.pi * (yy * rng.uniform(6, 12)))  # ribs
        out.append({"name": f"synthetic_{i:04d}", "image": np.clip(img, 0, 255).astype(np.uint8),
                    "mask": lungs})
    return out
