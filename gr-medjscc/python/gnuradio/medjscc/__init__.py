"""gr-medjscc: ROI-aware deep joint source-channel coding of X-ray images over GNU Radio.

Pure torch/numpy parts (``codec``, ``roi``, ``data``, ``phy``, ``metrics``, ``snr``) import
without GNU Radio. GNU Radio blocks live in ``gnuradio.medjscc.blocks`` and are exposed here
lazily (PEP 562), so ``from gnuradio import medjscc; medjscc.jscc_tx(...)`` works in GRC
templates while ``import gnuradio.medjscc.codec`` never touches GNU Radio.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# GRC block name -> module under gnuradio.medjscc.blocks that defines a class of that name.
_BLOCKS = {
    "jscc_tx": "jscc_tx",
    "jscc_rx": "jscc_rx",
    "ofdm_analog_tx": "ofdm_analog_tx",
    "ofdm_analog_rx": "ofdm_analog_rx",
    "symbol_channel": "symbol_channel",
    "snr_feedback": "snr_feedback",
    "roi_segmenter": "roi_segmenter",
    "channel_preset": "channel_preset",
    "image_sink": "image_sink",
}


def __getattr__(name: str):
    if name in _BLOCKS:
        module = importlib.import_module(f"{__name__}.blocks.{_BLOCKS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
