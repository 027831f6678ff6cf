"""Fit where in the spectrum a nodule is detectable (codec/detectability.py) on **train**-split
nodule pairs (never test): the radial DCT energy profile of the nodule observer's template (the
channelized Hotelling observer trained on these pairs, placed at each nodule), and of the nodule
itself (present minus absent, for the record), written to
``evaluation/codes/nodule_spectrum.json``, which the hybrid's task-weighted analog layer reads at
both ends (sweep method ``hybrid-softcast-task``).

    OMP_NUM_THREADS=1 .venv/bin/python bench/fit_nodule_spectrum.py --pairs 60 \\
        --out gr-medjscc/python/gnuradio/medjscc/evaluation/codes/nodule_spectrum.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=60, help="train-split nodule pairs (rendered on first use)")
    ap.add_argument("--out", default=None, help="JSON file to write (default: print only)")
    ap.add_argument("--json", action="store_true", help="print the fitted band weights as JSON")
    args = ap.parse_args(argv)

    from gnuradio.medjscc.codec import detectability, hybrid
    from gnuradio.medjscc.data.folder import read_image
    from gnuradio.medjscc.data.nodules import ensure_nodule_set, load_pairs
    from gnuradio.medjscc.errors import InputError

    if args.pairs < 1:
        raise InputError("--pairs must be at least 1")
    t0 = time.time()
    root = ensure_nodule_set(args.pairs, "train", progress=True)
    recs = load_pairs(root, "train", args.pairs)
    folder = root / "train" / "images"
    fit = detectability.fit_profiles([read_image(folder / f"{r['present']}.png") for r in recs],
                                     [read_image(folder / f"{r['absent']}.png") for r in recs],
                                     [r["nodule"] for r in recs])
    out = dict(bench="fit_nodule_spectrum", **fit,
               fit=dict(split="train", pairs=fit["pairs"], seconds=round(time.time() - t0, 1),
                        command="python bench/fit_nodule_spectrum.py " + " ".join(sys.argv[1:] if argv is None else argv)))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        detectability._observer_profile.cache_clear()
        detectability.band_detectability.cache_clear()
        rho = detectability.band_detectability((256, 256), hybrid.N_BANDS_DEFAULT, args.out)
        summary = dict(out=args.out, pairs=fit["pairs"], band_detectability_256=[round(float(x), 4) for x in rho])
        print(json.dumps(summary) if args.json else
              f"wrote {args.out} ({fit['pairs']} train pairs); per band (256x256, 16 bands): "
              + " ".join(f"{x:.3f}" for x in rho))
    else:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    from bench_cli import run

    run(main, "fit_nodule_spectrum")
