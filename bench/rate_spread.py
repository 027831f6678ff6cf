#!/usr/bin/env python3
"""How unevenly the information is spread over an image: the spread of the hyperprior's estimated
bits per latent position (one 16x16 patch), the quantity variable-length coding allocates by.

    python bench/rate_spread.py --json [--model ntscc] [--split test] [--limit 20] [--snr 10]

Prints one JSON object per model: the per-image coefficient of variation (std / mean) of the
bits per position (mean, min, max over the images) and the fraction of positions below half of
their image's mean. Variable length can only gain where some patches are much cheaper than
others; on the DRR set they are not (see models/README.md). Needs a variable-length model.
"""
from __future__ import annotations

import argparse
import json


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ntscc", help="comma list of variable-length model names or .pt paths")
    ap.add_argument("--data", default=None, help="image folder (default: the DRR set)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--snr", type=float, default=10.0, help="SNR the encoder's CAUs are told (dB)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.codec.datasets import load_pairs

    torch.set_num_threads(args.threads)
    pairs = load_pairs(args.data, args.split, args.limit)
    for name in args.model.split(","):
        codec = load_codec(name)
        cvs, low = [], []
        for p in pairs:
            bits = codec.rate_map(p["image"], p["mask"], args.snr)
            cvs.append(float(bits.std() / bits.mean()))
            low.append(float((bits < 0.5 * bits.mean()).mean()))
        row = {"model": name, "split": args.split, "n_images": len(pairs), "snr_db": args.snr,
               "bits_cv_mean": float(np.mean(cvs)), "bits_cv_min": float(np.min(cvs)),
               "bits_cv_max": float(np.max(cvs)), "fraction_below_half_mean": float(np.mean(low))}
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{name}: bits per position std/mean {row['bits_cv_mean']:.3f} "
                  f"({row['bits_cv_min']:.3f}..{row['bits_cv_max']:.3f}); "
                  f"positions below half the mean {100 * row['fraction_below_half_mean']:.1f}% ({len(pairs)} images)")


if __name__ == "__main__":
    main()
