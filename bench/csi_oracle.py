#!/usr/bin/env python3
"""What a decoder loses to the channel itself: selective and faded channels with perfect CSI.

    python bench/csi_oracle.py --json [--model medjscc_csi] [--images 8] [--snr 10,20]

The full GNU Radio bench (``bench/phy_impairments.py``) adds synchronisation, channel estimation
and tracking errors on top of what a channel costs. This bench removes them: each symbol's gain
is known exactly (as after the link's interleaver, an independent draw per symbol), equalised by
MMSE, and the decoder gets each symbol's 1/SNR_i and the SNR the receiver would state. The
difference between ``phy_impairments``' row and this one is what the PHY loses; this row against
``awgn`` is what the decoder loses to the channel. Channels:

* ``awgn``: y = x + n (reference; the same noise draw as the others);
* ``multipath_3tap``: |H_k|^2 of the ``multipath_3tap`` profile on the 48 data carriers
  (``hw_configs/radio_profiles.yaml``), normalised to mean 1, one carrier per symbol at random;
* ``rayleigh``: |h|^2 ~ Exp(1) per symbol (flat Rayleigh after interleaving);
* ``rician_k3``: Rician K = 3 per symbol;
* ``multipath_3tap_sorted``: the same carriers with CSI at the transmitter: the codec's stream
  (strong components first) is dealt to the carriers from the strongest to the weakest, as a TX
  told the carrier gains of a static channel could do (not built into the link yet).

``--repeat-strong`` sends that share of the strongest symbols twice (``codec.repetition``; 0, the
default, sends every symbol once).

One JSON line per (model, channel, snr_db) with the mean ROI-PSNR and its change vs ``awgn``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CHANNELS = ("awgn", "multipath_3tap", "rayleigh", "rician_k3", "multipath_3tap_sorted")


def carrier_gains(profile: str = "multipath_3tap") -> np.ndarray:
    """|H_k|^2 on the default layout's data carriers for a static tap profile, mean 1."""
    from gnuradio.medjscc.blocks.radio_profiles import get_radio_profile
    from gnuradio.medjscc.phy import OfdmParams

    p = OfdmParams().validate()
    taps = np.zeros(p.fft_len, complex)
    for t in get_radio_profile(profile).taps:
        taps[t.delay] += 10 ** (t.gain_db / 20) * np.exp(1j * np.deg2rad(t.phase_deg))
    g = np.abs(np.fft.fft(taps)[np.asarray(p.data_carrier_idx) % p.fft_len]) ** 2
    return g / g.mean()


def power_gains(channel: str, n: int, rng: np.random.Generator, mp_gains: np.ndarray) -> np.ndarray | None:
    if channel == "awgn":
        return None
    if channel == "multipath_3tap":
        return mp_gains[rng.integers(0, mp_gains.size, n)]
    if channel == "multipath_3tap_sorted":      # stream order -> carriers by decreasing gain
        return np.sort(mp_gains)[::-1][(np.arange(n) * mp_gains.size) // n]
    if channel == "rayleigh":
        return rng.exponential(1.0, n)
    if channel == "rician_k3":
        k = 3.0
        d = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * math.sqrt(0.5 / (k + 1))
        return np.abs(math.sqrt(k / (k + 1)) + d) ** 2
    raise SystemExit(f"csi_oracle: unknown channel {channel!r}; choose from {', '.join(CHANNELS)}")


def run(model: str, images: int, snrs, channels, progress: bool = True, repeat_strong: float = 0.0):
    from tqdm import tqdm

    from gnuradio.medjscc.codec.api import load_codec
    from gnuradio.medjscc.codec.datasets import load_pairs
    from gnuradio.medjscc.metrics import image_metrics

    codec = load_codec(model)
    pairs = load_pairs(None, "test", limit=images)
    mp = carrier_gains()
    out = []
    bar = tqdm(total=len(snrs) * len(pairs), desc=f"csi_oracle {model}", disable=not progress)
    for snr in snrs:
        n0 = 10 ** (-snr / 10)
        roi = {c: [] for c in channels}
        for i, pr in enumerate(pairs):
            img, mask = pr["image"], pr["mask"]
            enc = codec.encode(img, mask, snr_db=snr, cbr=1 / 16, repeat_strong=repeat_strong)
            for c in channels:
                # the same noise (and gain) draw per image for every model
                rng = np.random.default_rng([i, int(round(snr * 10)) + 1000, CHANNELS.index(c)])
                n = (rng.standard_normal(enc.symbols.size) + 1j * rng.standard_normal(enc.symbols.size)) * math.sqrt(n0 / 2)
                g = power_gains(c, enc.symbols.size, rng, mp)
                if g is None:
                    rec = codec.decode((enc.symbols + n).astype(np.complex64), enc.side_info, img.shape, snr_db=snr)
                else:
                    h = np.sqrt(g) * np.exp(2j * np.pi * rng.random(g.size))
                    y = np.conj(h) * (h * enc.symbols + n) / (g + n0)
                    stated = 10 * math.log10(1 / float(np.mean(n0 / (g + n0))) - 1)   # as jscc_rx states it
                    rec = codec.decode(y.astype(np.complex64), enc.side_info, img.shape, snr_db=stated,
                                       inv_snr=(n0 / np.maximum(g, 1e-30)).astype(np.float32))
                roi[c].append(image_metrics(img, rec, mask)["roi_psnr"])
            bar.update(1)
        ref = float(np.mean(roi["awgn"])) if "awgn" in roi else None
        for c in channels:
            v = float(np.mean(roi[c]))
            out.append({"model": model, "channel": c, "repeat_strong": repeat_strong, "snr_db": snr, "images": len(pairs), "roi_psnr": round(v, 3),
                        "vs_awgn_db": None if ref is None else round(v - ref, 3)})
    bar.close()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", default="medjscc_csi", help="codec name(s) or weights path(s), comma-separated")
    ap.add_argument("--images", type=int, default=8, help="test-split DRRs")
    ap.add_argument("--snr", default="10,20", help="SNR list in dB")
    ap.add_argument("--channels", default=",".join(CHANNELS), help="comma-separated: " + ", ".join(CHANNELS))
    ap.add_argument("--repeat-strong", type=float, default=0.0,
                    help="share of the strongest symbols sent twice (codec.repetition; 0 = every symbol once)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line, no progress bar")
    args = ap.parse_args(argv)
    snrs = [float(s) for s in args.snr.split(",")]
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    if "awgn" not in channels:
        channels = ["awgn"] + channels
    from gnuradio.medjscc.errors import MedJSCCError

    for c in channels:
        if c not in CHANNELS:
            ap.error(f"unknown channel {c!r}; choose from {', '.join(CHANNELS)}")
    for model in args.model.split(","):
        try:
            recs = run(model, args.images, snrs, channels, progress=not args.json,
                       repeat_strong=args.repeat_strong)
        except MedJSCCError as e:
            print(f"csi_oracle: {e}", file=sys.stderr)
            return 2
        for rec in recs:
            if args.json:
                print(json.dumps(rec), flush=True)
            else:
                print(f"{rec['model']:>14s} {rec['channel']:>15s} {rec['snr_db']:5.1f} dB  ROI-PSNR {rec['roi_psnr']:6.2f}"
                      + ("" if rec["vs_awgn_db"] is None else f"  ({rec['vs_awgn_db']:+.2f} vs awgn)"))


if __name__ == "__main__":
    sys.exit(main())
