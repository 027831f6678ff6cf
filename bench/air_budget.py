#!/usr/bin/env python3
"""What an image costs on air with different OFDM layouts, and what each layout gives up.

    python bench/air_budget.py --json [--images 6] [--snr=-2,0] [--frames 60]

For every layout (``LAYOUTS``: the default and variants with longer frames, larger side-info
chunks, a shorter cyclic prefix or a 128-point FFT) the test DRRs are encoded by the shipped
Med-JSCC at CBR 1/16 and framed with ``phy.framing``; the record counts every complex sample on
air per pixel (``cbr_air``: preambles, headers, pilots, cyclic prefix, padding) against the
codec's ``cbr_total``, and splits it by kind. Robustness is measured on the numpy PHY with the
same noise draws for every layout: the share of frame headers decoded (CRC) at each ``--snr`` in
AWGN, and how many lost frames an image survives without losing its side info
(``side_info_parity``). One JSON line per layout.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from phy_common import emit  # noqa: E402

LAYOUTS = {
    "default": {},
    "2 frames, side info whole in each": {"symbols_per_frame": 44, "header_side_info_bytes": 28},
    "1 frame per image": {"symbols_per_frame": 90, "header_side_info_bytes": 28, "side_info_parity": 0},
    "cp 8": {"cp_len": 8},
    "fft 128, 2 frames": {"fft_len": 128, "cp_len": 16, "n_data_carriers": 96, "n_pilot_carriers": 8,
                          "symbols_per_frame": 22, "n_long": 2, "n_short_reps": 6,
                          "header_side_info_bytes": 28},
    "fft 128, 1 frame": {"fft_len": 128, "cp_len": 16, "n_data_carriers": 96, "n_pilot_carriers": 8,
                         "symbols_per_frame": 44, "n_long": 2, "n_short_reps": 6,
                         "header_side_info_bytes": 28, "side_info_parity": 0},
}
COLUMNS = ["layout", "frames", "header_symbols", "cbr_total", "cbr_air", "air_over_total", "lost_frames_survived",
           "header_ok"]


def header_ok_rate(params, snr_db: float, n_frames: int, seed: int) -> float:
    """Share of frames whose header passes its CRC (AWGN, numpy PHY, one frame per burst)."""
    import numpy as np

    from gnuradio.medjscc.phy import FrameHeader, OfdmReceiver, OfdmTransmitter, apply_iq_channel

    rng = np.random.default_rng(seed)
    tx, ok = OfdmTransmitter(params), 0
    for k in range(n_frames):
        n = params.max_payload_len
        x = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2)).astype(np.complex64)
        hdr = FrameHeader(k % 255, 1, 255, n, bytes(rng.integers(0, 256, params.header_side_info_bytes,
                                                                  dtype=np.uint8)), 20)
        y = apply_iq_channel(tx.modulate(hdr, x), "awgn", snr_db, delay=int(rng.integers(100, 400)), tail=300,
                             rng=rng, params=params)
        rx = OfdmReceiver(params)
        ok += sum(f.crc_ok and f.header == hdr for f in list(rx.process(y)) + list(rx.flush()))
    return ok / n_frames


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6, help="test-split DRR images to encode")
    ap.add_argument("--snr", default="-2,0", help="SNRs (dB) of the header robustness check")
    ap.add_argument("--frames", type=int, default=60, help="frames per SNR in the header check")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "2")

    import numpy as np

    from gnuradio.medjscc import demo
    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.phy import OfdmParams, frame_image, overhead_symbols
    from gnuradio.medjscc.snr import parse_spec

    snrs = parse_spec(args.snr)
    codec = load_codec("medjscc")
    images, masks, _ = demo._load_images(args.images, 0)
    encoded = [codec.encode(img, m, snr_db=10.0, cbr=1 / 16) for img, m in zip(images, masks)]
    for name, kw in LAYOUTS.items():
        p = OfdmParams(**kw).validate()
        air, frames = [], []
        for img, enc in zip(images, encoded):
            ov = overhead_symbols(enc.symbols.size, len(enc.side_info), p)
            assert ov["frames"] == len(frame_image(0, enc.symbols, enc.side_info, p))
            air.append(ov["total"] / img.size)
            frames.append(ov["frames"])
        cbr_total = float(np.mean([e.cbr_total for e in encoded]))
        rec = {"layout": name, "params": kw, "frames": float(np.mean(frames)), "header_symbols": p.n_header_symbols,
               "cbr_total": cbr_total, "cbr_air": float(np.mean(air)),
               "air_over_total": float(np.mean(air)) / cbr_total, "lost_frames_survived": p.side_info_parity,
               "header_ok": {f"{s:g}": header_ok_rate(p, s, args.frames, 17) for s in snrs}}
        emit(rec, args.json, COLUMNS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
