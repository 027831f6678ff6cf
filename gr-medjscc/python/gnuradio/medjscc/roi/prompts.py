"""Prompts for the SAM-family segmenters: boxes and positive points, in image pixels.

``Prompt.coerce`` accepts what callers naturally have: ``None``, a ``Prompt``, one box
``(x0, y0, x1, y1)``, an ``(N, 4)`` array of boxes, or a dict ``{"boxes": ..., "points": ...}``.
``Prompt.validated(shape)`` clips boxes that stick out of the image and rejects prompts that
lie entirely outside it (``InputError`` naming the prompt and the image size).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError


def _floats(text: str, n: int, what: str) -> list[float]:
    parts = [p for p in str(text).replace(" ", "").split(",") if p != ""]
    if len(parts) != n:
        raise InputError(f"{what} must be {n} comma-separated numbers, got {text!r}")
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise InputError(f"{what} must be numbers, got {text!r}") from None
    if not all(np.isfinite(vals)):
        raise InputError(f"{what} must be finite, got {text!r}")
    return vals


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x0,y0,x1,y1"`` (pixels, inclusive corners) -> tuple."""
    return tuple(_floats(text, 4, "--box"))  # type: ignore[return-value]


def parse_point(text: str) -> tuple[float, float]:
    """``"x,y"`` (pixels) -> tuple."""
    return tuple(_floats(text, 2, "--point"))  # type: ignore[return-value]


@dataclass
class Prompt:
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))   # (N, 4) x0,y0,x1,y1
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # (M, 2) x,y (positive)

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.points = np.asarray(self.points, np.float32).reshape(-1, 2)
        if not (np.isfinite(self.boxes).all() and np.isfinite(self.points).all()):
            raise InputError("prompt coordinates must be finite")

    @property
    def empty(self) -> bool:
        return len(self.boxes) == 0 and len(self.points) == 0

    @classmethod
    def coerce(cls, prompt) -> "Prompt | None":
        if prompt is None:
            return None
        if isinstance(prompt, Prompt):
            return prompt
        if isinstance(prompt, dict):
            unknown = set(prompt) - {"boxes", "box", "points", "point"}
            if unknown:
                raise InputError(f"unknown prompt keys {sorted(unknown)}; use 'boxes' and/or 'points'")
            boxes = prompt.get("boxes", prompt.get("box"))
            points = prompt.get("points", prompt.get("point"))
            return cls(boxes=np.zeros((0, 4)) if boxes is None else boxes,
                       points=np.zeros((0, 2)) if points is None else points)
        try:
            arr = np.asarray(prompt, dtype=np.float32)
        except (TypeError, ValueError):
            arr = np.zeros(0, np.float32)
        if arr.ndim >= 1 and arr.shape[-1] == 4:
            return cls(boxes=arr)
        raise InputError(f"prompt must be a box (x0, y0, x1, y1), an (N, 4) array, a dict or a Prompt; got {prompt!r}")

    def validated(self, shape) -> "Prompt":
        """Check against an image of ``shape`` (H, W): clip boxes, reject what lies outside."""
        h, w = int(shape[0]), int(shape[1])
        boxes = []
        for b in self.boxes:
            x0, y0, x1, y1 = (float(v) for v in b)
            if x1 <= x0 or y1 <= y0:
                raise InputError(f"prompt box {tuple(b.tolist())} is empty: need x0 < x1 and y0 < y1")
            if x1 < 0 or y1 < 0 or x0 > w - 1 or y0 > h - 1:
                raise InputError(f"prompt box {tuple(b.tolist())} lies outside the {w}x{h} image")
            boxes.append([max(0.0, x0), max(0.0, y0), min(w - 1.0, x1), min(h - 1.0, y1)])
        for p in self.points:
            x, y = float(p[0]), float(p[1])
            if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
                raise InputError(f"prompt point {(x, y)} lies outside the {w}x{h} image")
        return Prompt(boxes=np.array(boxes, np.float32).reshape(-1, 4), points=self.points.copy())

    def groups(self) -> list[tuple[np.ndarray | None, np.ndarray]]:
        """Split into independent SAM queries: one per box (with the points inside it) and
        one for the points outside every box."""
        used = np.zeros(len(self.points), bool)
        out = []
        for b in self.boxes:
            inside = ((self.points[:, 0] >= b[0]) & (self.points[:, 0] <= b[2])
                      & (self.points[:, 1] >= b[1]) & (self.points[:, 1] <= b[3]))
            used |= inside
            out.append((b, self.points[inside]))
        if (~used).any():
            out.append((None, self.points[~used]))
        return out
