"""Image/mask pairs for training and evaluation.

Uses the data package (``gnuradio.medjscc.data.ImageFolderDataset`` / ``load_split``) when it is
available; otherwise reads the agreed layout directly: ``ROOT/<split>/images/*.png`` with
``ROOT/<split>/masks/<same name>`` (0/255), or ``ROOT/images`` + ``ROOT/masks``, or a flat folder
of images (no masks).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pgm", ".bmp"}


def _read_gray(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"), dtype=np.uint8)
    except Exception as e:  # noqa: BLE001 - report the file
        raise InputError(f"cannot read image {path}: {e}") from None


def _resolve(root: Path, split: str | None) -> tuple[Path, Path | None]:
    cands = [root / split / "images"] if split else []
    cands += [root / "images", root]
    for c in cands:
        if c.is_dir() and any(p.suffix.lower() in IMAGE_EXTS for p in c.iterdir()):
            masks = c.parent / "masks" if c.name == "images" else None
            return c, (masks if masks is not None and masks.is_dir() else None)
    raise InputError(f"no images found under {root} (looked for {', '.join(str(c) for c in cands)})")


def load_pairs(root: str | Path | None = None, split: str | None = "test", limit: int | None = None):
    """List of dicts(name, image uint8 HxW, mask bool HxW or None), sorted by name."""
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
    img_dir, mask_dir = _resolve(root, split)
    files = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if limit is not None:
        files = files[: int(limit)]
    out = []
    for p in files:
        mask = None
        if mask_dir is not None:
            mp = mask_dir / p.name
            if not mp.exists():
                mp = mask_dir / (p.stem + ".png")
            if mp.exists():
                mask = _read_gray(mp) > 127
        out.append({"name": p.stem, "image": _read_gray(p), "mask": mask})
    return out


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
