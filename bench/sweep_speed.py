"""Speed of ``medjscc sweep``: a 3-SNR x 2-method x 8-image symbol-level sweep (target < 60 s).

Prints one JSON object per line. Methods default to medjscc + j2k-ldpc when Med-JSCC weights are
shipped, else j2k-ldpc + j2k-capacity (named in the output). Run:

    OMP_NUM_THREADS=1 .venv/bin/python bench/sweep_speed.py --json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

TARGET_S = 60.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=None, help="two methods (default: see module doc)")
    ap.add_argument("--snr", default="0,5,10")
    ap.add_argument("--cbr", default="1/16")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--data", default=None, help="image folder (default: DRR test split)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--backend", default="local")
    ap.add_argument("--json", action="store_true", help="JSON lines only")
    args = ap.parse_args(argv)

    from gnuradio.medjscc.evaluation import methods as meth
    from gnuradio.medjscc.evaluation.sweep import SweepSpec, run_sweep
    from gnuradio.medjscc.snr import parse_spec

    if args.methods:
        chosen = args.methods.split(",")
    else:
        try:
            meth.neural_codec("medjscc")
            chosen = ["medjscc", "j2k-ldpc"]
        except Exception:  # noqa: BLE001 - no weights: fall back to two digital methods
            chosen = ["j2k-ldpc", "j2k-capacity"]
    spec = SweepSpec(methods=chosen, snrs=parse_spec(args.snr), cbrs=parse_spec(args.cbr), limit=args.images,
                     data=args.data, split="test")
    out = tempfile.mkdtemp(prefix="sweep_speed_")
    try:
        t0 = time.perf_counter()
        res = run_sweep(spec, out, backend=args.backend, workers=args.workers, progress=not args.json, plots=False)
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    n_images = max(p["n"] for p in res.points)
    record = {"bench": "sweep_speed", "methods": chosen, "snr_db": spec.snrs, "cbr": spec.cbrs,
              "images": n_images, "points": len(res.points), "rows": res.n_rows_new,
              "workers": args.workers or os.cpu_count(), "backend": args.backend,
              "seconds": round(seconds, 2), "target_s": TARGET_S, "meets_target": seconds < TARGET_S}
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
