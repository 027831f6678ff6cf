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


# ------------------------------------------------------------------ stock analog OFDM equaliser path
def _stock_layout():
    from gnuradio.digital import ofdm_txrx as T

    occ, pil, psym = T._def_occupied_carriers, T._def_pilot_carriers, T._def_pilot_symbols
    sw1 = T._make_sync_word1(64, occ, pil)
    sw2 = T._make_sync_word2(64, occ, pil)
    return occ, pil, psym, list(sw1), list(sw2)


def stock_analog_tx(payloads: list[np.ndarray]) -> list[np.ndarray]:
    """Analog symbols through stock TX blocks (tagged stream -> ofdm_carrier_allocator_cvc with
    the two Schmidl & Cox sync words -> IFFT -> ofdm_cyclic_prefixer), one burst per payload
    (length a multiple of 48), each scaled to unit average power per sample."""
    from gnuradio import blocks, digital, fft, gr

    occ, pil, psym, sw1, sw2 = _stock_layout()
    n = payloads[0].size
    tb = gr.top_block()
    src = blocks.vector_source_c(np.concatenate(payloads).astype(np.complex64), False)
    s2ts = blocks.stream_to_tagged_stream(gr.sizeof_gr_complex, 1, n, "packet_len")
    alloc = digital.ofdm_carrier_allocator_cvc(64, occ, pil, psym, [sw1, sw2], "packet_len", True)
    ifft = fft.fft_vcc(64, False, (), True)
    cp = digital.ofdm_cyclic_prefixer(64, 80, 0, "packet_len")
    snk = blocks.vector_sink_c()
    tb.connect(src, s2ts, alloc, ifft, cp, snk)
    tb.run()
    iq = np.asarray(snk.data(), np.complex64).reshape(len(payloads), -1)
    return [(b / np.sqrt(np.mean(np.abs(b) ** 2))).astype(np.complex64) for b in iq]


def stock_analog_rx_genie_timing(frames_iq: list[np.ndarray], n_data_symbols: int) -> list[np.ndarray]:
    """Stock RX equaliser on perfectly timed frames (CP removed here): FFT -> ofdm_chanest_vcvc ->
    ofdm_frame_equalizer_vcvc(ofdm_equalizer_static). Returns the equalised data-carrier symbols
    per frame, in the allocator's order. No CFO correction (stock chanest only finds integer
    offsets), so use it on CFO-free channels."""
    from gnuradio import blocks, digital, fft, gr

    occ, pil, psym, sw1, sw2 = _stock_layout()
    n_sym = 2 + n_data_symbols
    vecs = np.concatenate([f[: n_sym * 80].reshape(n_sym, 80)[:, 16:] for f in frames_iq]).astype(np.complex64)
    tb = gr.top_block()
    src = blocks.vector_source_c(vecs.reshape(-1), False, 64)
    fwd = fft.fft_vcc(64, True, (), True)
    chanest = digital.ofdm_chanest_vcvc(sw1, sw2, n_data_symbols)
    eq = digital.ofdm_equalizer_static(64, occ, pil, psym, 0, True)
    feq = digital.ofdm_frame_equalizer_vcvc(eq.base(), 16, "", False, n_data_symbols)
    snk = blocks.vector_sink_c(64)
    tb.connect(src, fwd, chanest, feq, snk)
    tb.run()
    out = np.asarray(snk.data(), np.complex64).reshape(-1, n_data_symbols, 64)
    bins = np.array(occ[0]) + 32                      # shifted spectrum
    return [o[:, bins].reshape(-1) for o in out]


def stream_frame(k: int) -> dict:
    """Header fields of the k-th frame of a long benchmark stream: the header holds at most 255
    frames per image, so the stream is cut into 255-frame images (k = 255 * image_id + seq)."""
    return {"seq": k % 255, "image_id": (k // 255) % 65536, "frame_count": 255}
