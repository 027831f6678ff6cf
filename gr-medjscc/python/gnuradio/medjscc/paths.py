"""Where shipped resources live, in a source checkout and after ``make install``."""
from __future__ import annotations

import os
from pathlib import Path

_PKG_DIR = Path(__file__).resolve().parent


def _first_existing(candidates):
    for c in candidates:
        if c is not None and Path(c).is_dir():
            return Path(c)
    return None


def repo_root() -> Path | None:
    """The source checkout root when running from it (editable install), else None."""
    # gr-medjscc/python/gnuradio/medjscc -> repo root is 4 levels up
    root = _PKG_DIR.parents[3]
    return root if (root / "pyproject.toml").is_file() else None


def share_dir() -> Path | None:
    """``<prefix>/share/gr-medjscc`` of a CMake install, if present."""
    # <prefix>/lib/python3/dist-packages/gnuradio/medjscc -> <prefix>
    for up in range(3, min(7, len(_PKG_DIR.parents))):
        cand = _PKG_DIR.parents[up] / "share" / "gr-medjscc"
        if cand.is_dir():
            return cand
    return None


def _shipped_dir(name: str, env_var: str) -> Path:
    """``<repo>/<name>`` in a checkout, ``<prefix>/share/gr-medjscc/<name>`` after an install;
    ``env_var`` overrides both."""
    root, share = repo_root(), share_dir()
    found = _first_existing([
        os.environ.get(env_var),
        root / name if root else None,
        share / name if share else None,
    ])
    if found is None:
        raise FileNotFoundError(f"gr-medjscc {name}/ folder not found; set {env_var}")
    return found


def models_dir() -> Path:
    """Directory with shipped weights; override with ``MEDJSCC_MODELS_DIR``."""
    return _shipped_dir("models", "MEDJSCC_MODELS_DIR")


def hw_configs_dir() -> Path:
    """Directory with the shipped USRP configs; override with ``MEDJSCC_HW_CONFIGS_DIR``."""
    return _shipped_dir("hw_configs", "MEDJSCC_HW_CONFIGS_DIR")


def flowgraphs_dir() -> Path:
    """The shipped ``.grc`` flowgraphs; override with ``MEDJSCC_FLOWGRAPHS_DIR``."""
    return _shipped_dir("flowgraphs", "MEDJSCC_FLOWGRAPHS_DIR")


def sample_image() -> str:
    """A 256x256 simulated chest radiograph shipped with the flowgraphs (their default image)."""
    return str(flowgraphs_dir() / "samples" / "chest_drr.png")


def sample_mask() -> str:
    """The lung ROI mask (0/255 PNG) of :func:`sample_image`, for ROI-PSNR."""
    return str(flowgraphs_dir() / "samples" / "chest_drr_mask.png")


def grc_dir() -> Path:
    """Directory holding our ``.block.yml`` files (for ``GRC_BLOCKS_PATH``)."""
    root, share = repo_root(), share_dir()
    cands = [root / "gr-medjscc" / "grc" if root else None]
    if share:
        cands.append(share.parent / "gnuradio" / "grc" / "blocks")
    found = _first_existing(cands)
    if found is None:
        raise FileNotFoundError("GRC block folder of gr-medjscc not found")
    return found


def default_data_dir() -> Path:
    """Default DRR data set location (``MEDJSCC_DATA_DIR`` or ``<repo>/data/drr``)."""
    env = os.environ.get("MEDJSCC_DATA_DIR")
    if env:
        return Path(env)
    root = repo_root()
    return (root / "data" / "drr") if root else Path.home() / ".cache" / "gr-medjscc" / "drr"
