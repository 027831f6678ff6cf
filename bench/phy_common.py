"""Shared helpers of the PHY benchmarks (bench/phy_*.py): stock GNU Radio reference paths, streams
of bursts with known positions, JSON/table output. GNU Radio is imported lazily (phy/ never does)."""
from __future__ import annotations

import json
import math
import sys

import numpy as np


def emit(record: dict, as_json: bool, columns: list[str]) -> None:
    rec = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
    if as_json:
        print(json.dumps(rec), flush=True)
    else:
        cells = []
        for c in columns:
            v = rec.get(c)
            cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        print("  ".join(f"{c}={v}" for c, v in zip(columns, cells)), flush=True)


def complex_symbols(rng, n: int) -> np.ndarray:
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2)).astype(np.complex64)


def stock_ofdm_burst(n_bytes: int = 48, seed: int = 0) -> np.ndarray:
    """One burst of the stock ``digital.ofdm_tx`` (default 64/16 layout, 52 occupied carriers, like
    ours), scaled to unit average power per sample so the same noise calibration gives the same
    data-subcarrier Es/N0."""
    from gnuradio import blocks, digital, gr

    data = np.random.default_rng(seed).integers(0, 256, n_bytes).astype(np.uint8)
    tb = gr.top_block()
    src = blocks.vector_source_b(data.tolist(), False)
    s2ts = blocks.stream_to_tagged_stream(gr.sizeof_char, 1, n_bytes, "packet_len")
    tx = digital.ofdm_tx(fft_len=64, cp_len=16, packet_length_tag_key="packet_len")
    snk = blocks.vector_sink_c()
    tb.connect(src, s2ts, tx, snk)
    tb.run()
    iq = np.asarray(snk.data(), np.complex64)
    return (iq / np.sqrt(np.mean(np.abs(iq) ** 2))).astype(np.complex64)


def stream_of_bursts(bursts: list[np.ndarray], rng, gap=(300, 1200)) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate bursts with random silent gaps; returns (stream, burst start indices)."""
    parts, starts, pos = [], [], 0
    for b in bursts:
        g = int(rng.integers(gap[0], gap[1]))
        parts += [np.zeros(g, np.complex64), b]
        starts.append(pos + g)
        pos += g + b.size
    parts.append(np.zeros(int(gap[1]), np.complex64))
    return np.concatenate(parts), np.array(starts)


def stock_sync_triggers(stream: np.ndarray, threshold: float = 0.9) -> np.ndarray:
    """Sample indices where stock ``digital.ofdm_sync_sc_cfb`` flags a frame."""
    from gnuradio import blocks, digital, gr

    tb = gr.top_block()
    src = blocks.vector_source_c(stream, False)
    sync = digital.ofdm_sync_sc_cfb(64, 16, False, threshold)
    det = blocks.vector_sink_b()
    tb.connect(src, sync)
    tb.connect((sync, 0), blocks.null_sink(gr.sizeof_float))
    tb.connect((sync, 1), det)
    tb.run()
    return np.flatnonzero(np.asarray(det.data(), np.uint8))


def match_detections(found: np.ndarray, expected: np.ndarray, tol: int) -> tuple[int, int]:
    """-> (frames with >= 1 detection within tol of their expected position, unmatched detections)."""
    found = np.sort(np.asarray(found))
    hit = 0
    used = np.zeros(found.size, bool)
    for e in expected:
        lo, hi = np.searchsorted(found, e - tol), np.searchsorted(found, e + tol, side="right")
        if hi > lo:
            hit += 1
            used[lo:hi] = True
    return hit, int((~used).sum())


def have_gnuradio() -> bool:
    try:
        from gnuradio import gr  # noqa: F401
        return True
    except Exception as e:  # pragma: no cover - environment dependent
        print(f"note: GNU Radio not importable ({e}); stock rows skipped", file=sys.stderr)
        return False
