#!/usr/bin/env python3
"""Effective SNR of equalised payload symbols vs true SNR, and the per-frame SNR estimate error.

    python bench/phy_eq.py --json [--quick] [--snr -5:25:5] [--frames 20]

Full frames (1536 Gaussian unit-power payload symbols) go TX -> ``apply_iq_channel`` -> RX for
``awgn`` and ``multipath_cfo`` (3-tap [1, 0.5j, 0.25] + random CFO in [-0.4, 0.4] subcarrier
spacings + random delay). For each equaliser (zf, mmse):

* ``effective_snr_db`` = 10 log10(1 / mean |x_hat - x|^2) over all payload symbols (x known);
* ``genie_snr_db``: the same figure for the same equaliser type given the true channel and N0
  (for AWGN + ZF this is the true SNR); ``loss_db = genie_snr_db - effective_snr_db``
  (target <= 1 dB from 0 to 25 dB);
* ``snr_est_error_db``: mean of (RxFrame.snr_db - true data-subcarrier Es/N0), and its RMS
  (target |error| <= 0.5 dB over -5..25 dB) over all detected frames (preamble-only estimate when
  the header failed). True Es/N0 = mean_k |H_k|^2 / N0 over data carriers.
Stock rows (CFO-free channels only): stock TX blocks (carrier allocator with S&C sync words, IFFT,
CP) and the stock RX equaliser ``ofdm_chanest_vcvc`` + ``ofdm_equalizer_static`` given perfect
timing (its best case; it has no fractional-CFO correction and no pilot phase tracking).
Effective SNR is scored on frames whose header decoded (``header_ok_rate`` says how many);
``--header-repeat 2`` doubles the header length for operation below -3 dB.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

COLUMNS = ["impl", "channel", "snr_db", "equalizer", "effective_snr_db", "genie_snr_db", "loss_db",
           "snr_est_error_db", "snr_est_rmse_db", "header_ok_rate"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snr", default="-5:25:5")
    ap.add_argument("--frames", type=int, default=60,
                    help="frames per point (the -5 dB estimate has ~1.2 dB RMS per frame: 60 frames give a +-0.16 dB mean)")
    ap.add_argument("--channels", default="awgn,multipath,multipath_cfo")
    ap.add_argument("--quick", action="store_true", help="6 frames per point, SNR 0,10,20")
    ap.add_argument("--header-repeat", type=int, default=1)
    ap.add_argument("--no-stock", action="store_true")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import numpy as np

    from gnuradio.medjscc.phy import FrameHeader, OfdmParams, OfdmReceiver, OfdmTransmitter, apply_iq_channel
    from gnuradio.medjscc.snr import parse_spec
    from phy_common import complex_symbols, emit, have_gnuradio, stream_frame

    use_stock = not args.no_stock and have_gnuradio()
    if use_stock:
        from phy_common import stock_analog_rx_genie_timing, stock_analog_tx

    snrs = parse_spec("0,10,20" if args.quick else args.snr)
    n_frames = 6 if args.quick else args.frames
    p = OfdmParams(header_repeat=args.header_repeat).validate()
    tx = OfdmTransmitter(p)
    rng = np.random.default_rng(args.seed)
    data_bins = p.bins(p.data_carrier_idx)
    t0 = time.time()
    for channel in [c.strip() for c in args.channels.split(",") if c.strip()]:
        preset = "multipath" if channel.startswith("multipath") else channel
        for snr in snrs:
            n0 = 10 ** (-snr / 10)
            sent, pieces, trueH = [], [], None
            for k in range(n_frames):
                x = complex_symbols(rng, p.max_payload_len)
                hdr = FrameHeader(payload_len=x.size, **stream_frame(k))
                cfo = float(rng.uniform(-0.4, 0.4)) if channel.endswith("_cfo") else 0.0
                y, info = apply_iq_channel(tx.modulate(hdr, x), preset, snr, cfo=cfo,
                                           delay=int(rng.integers(100, 600)), tail=300, rng=rng, params=p,
                                           return_info=True)
                sent.append(x)
                pieces.append(y)
                trueH = np.fft.fft(info["taps"], p.fft_len)[data_bins]
            stream = np.concatenate(pieces)
            h2 = np.abs(trueH) ** 2
            true_snr = 10 * math.log10(np.mean(h2) / n0)
            genie_mse = {"zf": np.mean(n0 / h2), "mmse": np.mean(n0 / (h2 + n0))}
            rx = OfdmReceiver(p)
            for eq in ("zf", "mmse"):
                rx.reset()
                rx.set_equalizer(eq)
                detected = rx.process(stream) + rx.flush()
                frames = [f for f in detected if f.crc_ok]
                err = [np.mean(np.abs(f.payload - sent[255 * f.image_id + f.seq]) ** 2) for f in frames]
                # the estimate exists for every detected frame (preamble-only when the header failed)
                est = np.array([f.snr_db - true_snr for f in detected])
                eff = 10 * math.log10(1 / np.mean(err)) if err else float("nan")
                genie = 10 * math.log10(1 / genie_mse[eq])
                emit(dict(impl="medjscc", channel=channel, snr_db=snr, equalizer=eq, effective_snr_db=eff,
                          genie_snr_db=genie, loss_db=genie - eff,
                          snr_est_error_db=float(np.mean(est)) if est.size else float("nan"),
                          snr_est_rmse_db=float(np.sqrt(np.mean(est ** 2))) if est.size else float("nan"),
                          true_snr_db=true_snr, header_ok_rate=len(frames) / n_frames, n_frames=n_frames,
                          n_detected=len(detected), header_repeat=p.header_repeat),
                     args.json, COLUMNS)
            if use_stock and not channel.endswith("_cfo"):
                # stock chain (ofdm_chanest_vcvc + ofdm_equalizer_static, a ZF on the raw preamble
                # estimate), given perfect timing and no CFO: the best case for it
                n_sym = p.symbols_per_frame
                pays = [complex_symbols(rng, n_sym * 48) for _ in range(n_frames)]
                bursts = stock_analog_tx(pays)
                rx_iq = [apply_iq_channel(b, preset, snr, rng=rng, params=p) for b in bursts]
                outs = stock_analog_rx_genie_timing(rx_iq, n_sym)
                err = float(np.mean([np.mean(np.abs(o - x) ** 2) for o, x in zip(outs, pays)]))
                eff = 10 * math.log10(1 / err)
                genie = 10 * math.log10(1 / genie_mse["zf"])
                emit(dict(impl="stock", channel=channel, snr_db=snr, equalizer="static(zf)", effective_snr_db=eff,
                          genie_snr_db=genie, loss_db=genie - eff, snr_est_error_db=None, snr_est_rmse_db=None,
                          true_snr_db=true_snr, header_ok_rate=None, n_frames=n_frames, timing="genie"),
                     args.json, COLUMNS)
    print(f"done in {time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
