"""SHA-256 side files (``<weights>.sha256``) for every shipped model: written next to the file
on save, verified before ``torch.load(..., weights_only=True)`` on load."""
from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import WeightsError


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def write_sha256(path) -> Path:
    side = sha256_path(path)
    side.write_text(f"{file_sha256(path)}  {Path(path).name}\n")
    return side


def verify_sha256(path, remedy: str = "") -> None:
    """Raise ``WeightsError`` (with ``remedy`` appended) unless ``path`` matches its side file."""
    path, side = Path(path), sha256_path(path)
    hint = f"; {remedy}" if remedy else ""
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}{hint}")
    if not side.is_file():
        raise WeightsError(f"checksum file missing for {path} (expected {side}){hint}")
    text = side.read_text().strip()
    expected = text.split()[0].lower() if text else ""
    actual = file_sha256(path)
    if actual != expected:
        raise WeightsError(f"checksum mismatch for {path}: SHA-256 {actual[:16]}... does not match "
                           f"{side.name} ({expected[:16]}...); the file is damaged or was replaced{hint}")
