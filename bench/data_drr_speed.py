#!/usr/bin/env python3
"""DRR generation speed: images/s for `medjscc data drr` at a given size and worker count.

    python bench/data_drr_speed.py --json [--count 40] [--size 256] [--workers 2]

Prints one JSON object per line: {"impl": "medjscc", "images_per_s": ..., ...}. The one-off
volume preprocessing (cached in ~/.cache/gr-medjscc) is done before the clock starts.
images_per_s is wall-clock (depends on other load: see load_avg_1min); cpu_s_per_image is the
CPU time per image, so 'workers / cpu_s_per_image' is the rate on that many idle cores.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _cpu_seconds() -> float:
    """CPU time of this process and its (finished) worker processes: a figure that does not
    depend on how busy the machine is, unlike images_per_s."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)

    from gnuradio.medjscc.data import drr

    drr.load_volume()   # warm the cache: not part of the measurement
    with tempfile.TemporaryDirectory() as tmp:
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        drr.generate_dataset(tmp, count=args.count, size=args.size, seed=args.seed,
                             workers=args.workers, progress=False)
        elapsed = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
    result = {"impl": "medjscc", "bench": "data_drr_speed", "images_per_s": round(args.count / elapsed, 3),
              "count": args.count, "size": args.size, "workers": args.workers,
              "seconds": round(elapsed, 2), "cpu_s_per_image": round(cpu / args.count, 3),
              "cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['images_per_s']:.2f} images/s ({args.count} images {args.size}x{args.size}, "
              f"{args.workers} workers, {elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
