"""gnuradio.medjscc.roi: lung ROI masks for the ROI-aware codec (pure torch/numpy).

* ``get_segmenter(backend, **kw).segment(image, prompt=None) -> bool HxW``
  (backends: auto, litemedsam, sam2, oracle; see ``roi.segmenters``).
* ``roi.sideinfo``: ``mask_to_grid``, ``encode_mask``, ``decode_mask``, ``mask_bits``,
  ``decode_mask_or_all_roi`` (the mask as compact lossless side information).

Segmenters import torch lazily, so ``import gnuradio.medjscc.roi`` stays light.
"""
from __future__ import annotations

from .sideinfo import (decode_mask, decode_mask_or_all_roi, encode_mask, grid_to_mask,  # noqa: F401
                       mask_bits, mask_to_grid)

_LAZY = {"get_segmenter": "segmenters", "Segmenter": "segmenters", "Prompt": "prompts",
         "BACKENDS": "segmenters"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
