"""Shared helpers for the GNU Radio block QA tests (qa_*.py). Not a test module itself."""
from __future__ import annotations

import functools
import time

import numpy as np


@functools.lru_cache(maxsize=1)
def shared_codec():
    """Shipped Med-JSCC weights when present, else a random-init model (plumbing tests only)."""
    from gnuradio.medjscc.codec import build_codec, load_codec

    try:
        return load_codec("medjscc")
    except Exception:
        return build_codec("medjscc")


def synthetic_image(size: int = 256, seed: int = 0) -> np.ndarray:
    """A smooth synthetic radiograph-like image (deterministic)."""
    y, x = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(seed)
    img = 120 + 80 * np.sin(3 * x + seed) * np.cos(2 * y) + 10 * rng.standard_normal((size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def run_message_block(block, in_port: str, messages, out_port: str, expected: int,
                      timeout: float = 10.0, settle: float = 0.0):
    """Run ``block`` alone: post ``messages`` to ``in_port``, collect ``out_port``; returns items."""
    from gnuradio import gr

    from gnuradio.medjscc.blocks._msgtools import pdu_collector, post

    tb = gr.top_block()
    col = pdu_collector()
    tb.msg_connect(block, out_port, col, "in")
    tb.start()
    try:
        for m in messages:
            post(block, in_port, m)
        col.wait_for(expected, timeout)
        if settle:
            time.sleep(settle)
    finally:
        tb.stop()
        tb.wait()
    return col.items
