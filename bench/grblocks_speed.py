#!/usr/bin/env python3
"""Speed of the GNU Radio blocks: OFDM TX -> channel_preset -> OFDM RX inside a top block, the
stock GNU Radio byte loopback in the same run, and the demo's run_ofdm_loopback budget.

    python bench/grblocks_speed.py --json [--quick] [--frames 300] [--repeats 3] [--snr 15]
                                   [--rx-min-batch N] [--rx-max-latency-ms MS] [--small-chunks]

Records (one JSON object per line with --json):
* ``impl=medjscc``: ``msps`` = transmitted samples / wall seconds of the whole top block (Python
  blocks, GNU Radio scheduler), ``msps_per_cpu_s`` = the same over the process CPU time (a
  load-independent figure on a shared machine), ``frames_ok``, ``rx_min_batch`` (the RX block's
  batching; ``--rx-min-batch 0`` = one decoder run per work() call, the behaviour before batching),
  ``small_chunks`` (``--small-chunks``: the channel keeps GNU Radio's default stream buffers, so
  the RX gets work() calls of a few thousand samples, as from a USRP or ZMQ source; by default
  its 64k buffers hand the RX big chunks already).
* ``impl=stock``: ``digital.ofdm_tx -> channel_model -> digital.ofdm_rx`` (bytes), from
  ``bench/phy_throughput.py`` (same SNR convention and burst padding).
* ``impl=medjscc, kind=demo``: seconds for 3 images x 4 SNRs through ``run_ofdm_loopback``
  (shipped weights; ``random_weights`` says when they were missing). Demo budget: well under 60 s.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def emit(rec: dict, as_json: bool):
    rec = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in rec.items()}
    print(json.dumps(rec) if as_json else "  ".join(f"{k}={v}" for k, v in rec.items()), flush=True)


def ours(n_frames: int, snr_db: float, cfo: float, rx_kwargs: dict | None = None,
         small_chunks: bool = False):
    import numpy as np
    import pmt
    from gnuradio import gr

    from gnuradio.medjscc.blocks._msgtools import pdu_collector, post
    from gnuradio.medjscc.blocks._pmtutil import make_pdu
    from gnuradio.medjscc.blocks.channel_preset import channel_preset
    from phy_common import stream_frame
    from gnuradio.medjscc.blocks.ofdm_analog_rx import ofdm_analog_rx
    from gnuradio.medjscc.blocks.ofdm_analog_tx import ofdm_analog_tx

    rng = np.random.default_rng(0)
    tb = gr.top_block()
    tx, rx = ofdm_analog_tx(), ofdm_analog_rx(**(rx_kwargs or {}))
    ch = channel_preset("awgn", snr_db, cfo=cfo, params=tx.params, big_buffers=not small_chunks)
    col = pdu_collector(meta_only=True)
    tb.connect(tx, ch, rx)
    tb.msg_connect(rx, "pdus", col, "in")
    n = tx.params.max_payload_len
    pay = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)
    for i in range(n_frames):
        post(tx, "pdus", make_pdu({**stream_frame(i), "payload_len": n, "side_info_chunk": b""}, pay))
    post(tx, "pdus", pmt.intern("eos"))
    t0, c0 = time.perf_counter(), time.process_time()
    tb.run()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    samples = tx.modulator.guard + n_frames * (tx.params.frame_len(n) + tx.modulator.guard)
    ok = sum(1 for m in col.items if isinstance(m, dict) and m.get("crc_ok"))
    return samples, dt, cpu, ok, rx.min_batch


def demo_budget():
    import numpy as np

    from gnuradio.medjscc.blocks.loopback import run_ofdm_loopback
    from gnuradio.medjscc.codec import build_codec, load_codec
    from gnuradio.medjscc.config import LinkConfig

    random_weights = False
    try:
        codec = load_codec("medjscc")
    except Exception:
        codec, random_weights = build_codec("medjscc"), True
    y, x = np.mgrid[0:256, 0:256] / 256
    images = [np.clip(120 + 80 * np.sin(3 * x + k) * np.cos(2 * y), 0, 255).astype(np.uint8) for k in range(3)]
    t0 = time.perf_counter()
    res = run_ofdm_loopback(images, None, LinkConfig(), [0, 5, 10, 20], codec=codec)
    return time.perf_counter() - t0, res, random_weights


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--snr", type=float, default=15.0)
    ap.add_argument("--cfo", type=float, default=0.05)
    ap.add_argument("--quick", action="store_true", help="100 frames, 1 repeat")
    ap.add_argument("--no-stock", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rx-min-batch", type=int, default=None,
                    help="OFDM RX min_batch in samples (default: the block's; 0 = no batching)")
    ap.add_argument("--rx-max-latency-ms", type=float, default=None,
                    help="OFDM RX max_latency_ms (default: the block's)")
    ap.add_argument("--small-chunks", action="store_true",
                    help="channel with GNU Radio's default buffers: small work() chunks into the RX")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    frames = 100 if args.quick else args.frames
    repeats = 1 if args.quick else args.repeats
    rx_kwargs = {k: v for k, v in (("min_batch", args.rx_min_batch),
                                   ("max_latency_ms", args.rx_max_latency_ms)) if v is not None}
    best = None
    for _ in range(repeats):
        r = ours(frames, args.snr, args.cfo, rx_kwargs, args.small_chunks)
        best = r if best is None or r[1] < best[1] else best
    samples, dt, cpu, ok, rx_min_batch = best
    ours_msps = samples / dt / 1e6
    emit(dict(impl="medjscc", kind="gr_loopback", channel="awgn", snr_db=args.snr, msps=ours_msps,
              msps_per_cpu_s=samples / cpu / 1e6, frames_ok=f"{ok}/{frames}", n_samples=samples,
              rx_min_batch=rx_min_batch, small_chunks=args.small_chunks, loadavg=os.getloadavg()[0]),
         args.json)
    if not args.no_stock:
        try:
            import numpy as np
            from gnuradio import blocks, digital, gr
            from phy_throughput import stock_loopback

            packet_len = 96
            data = np.random.default_rng(0).integers(0, 256, packet_len).astype(np.uint8)
            tb = gr.top_block()
            snk = blocks.vector_sink_c()
            tb.connect(blocks.vector_source_b(data.tolist(), False),
                       blocks.stream_to_tagged_stream(gr.sizeof_char, 1, packet_len, "packet_len"),
                       digital.ofdm_tx(fft_len=64, cp_len=16, packet_length_tag_key="packet_len"), snk)
            tb.run()
            burst = np.asarray(snk.data(), np.complex64)
            power = float(np.mean(np.abs(burst) ** 2))
            n_packets = max(1, int(samples // (burst.size + 160)))
            best_s = None
            for _ in range(repeats):
                ds, cs, ok_s = stock_loopback(n_packets, packet_len, args.snr, args.cfo, power, 52)
                best_s = (ds, cs, ok_s) if best_s is None or ds < best_s[0] else best_s
            ns = n_packets * (burst.size + 160)
            emit(dict(impl="stock", kind="gr_loopback", channel="awgn", snr_db=args.snr, msps=ns / best_s[0] / 1e6,
                      msps_per_cpu_s=ns / best_s[1] / 1e6, frames_ok=f"{best_s[2]}/{n_packets}", n_samples=ns,
                      ratio_medjscc_over_stock=ours_msps / (ns / best_s[0] / 1e6),
                      loadavg=os.getloadavg()[0]), args.json)
        except ImportError as e:
            emit(dict(impl="stock", kind="gr_loopback", error=f"stock reference unavailable: {e}"), args.json)
    seconds, res, random_weights = demo_budget()
    emit(dict(impl="medjscc", kind="demo", channel="awgn", images=3, snrs=4, seconds=seconds,
              frames_ok=f"{sum(r['frames_ok'] for r in res)}/{sum(r['frames_total'] for r in res)}",
              random_weights=random_weights, loadavg=os.getloadavg()[0]), args.json)


if __name__ == "__main__":
    main()
