#!/usr/bin/env python3
"""Seconds per 256x256 image for the ROI segmenters on CPU (default: auto, 2 threads).

    python bench/roi_speed.py --json [--backend auto] [--threads 2] [--n 10] [--split test]

One JSON object per backend: backend, threads, seconds_per_image (mean), median_s, min_s, max_s,
n_images, target_s (1.5), meets_target (mean), meets_target_median, load_avg_1min. Uses DRR test
images (first --n), after one warm-up call. On a shared machine the mean is inflated by other
processes (two torch threads on two busy cores stall each other); the median and the load
average are reported so such runs can be recognised.
"""
import argparse
import json
import os
import statistics
import sys
import time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="auto", help="comma-separated backends (auto,litemedsam)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--split", default="test")
    ap.add_argument("--data", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from gnuradio.medjscc.data import load_split
    from gnuradio.medjscc.roi import get_segmenter
    from gnuradio.medjscc.roi.evaluate import gt_boxes

    ds = load_split(args.split, root=args.data, limit=args.n)
    items = [ds[i] for i in range(len(ds))]
    for backend in [b.strip() for b in args.backend.split(",") if b.strip()]:
        seg = get_segmenter(backend, threads=args.threads)
        prompt = (lambda it: gt_boxes(it["mask"])) if backend in ("litemedsam", "sam2") else (lambda it: None)
        seg.segment(items[0]["image"], prompt(items[0]))          # warm-up (lazy init, allocator)
        times = []
        for it in items:
            img = it["image"].copy()
            img[0, 0] ^= 1   # defeat the embedding cache: every call encodes a new image
            t0 = time.perf_counter()
            seg.segment(img, prompt(it))
            times.append(time.perf_counter() - t0)
        res = {"backend": backend, "threads": args.threads, "seconds_per_image": statistics.mean(times),
               "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
               "n_images": len(times), "image_size": list(items[0]["image"].shape), "target_s": 1.5,
               "meets_target": statistics.mean(times) <= 1.5,
               "meets_target_median": statistics.median(times) <= 1.5, "load_avg_1min": os.getloadavg()[0]}
        print(json.dumps(res) if args.json else
              f"{backend}: {res['seconds_per_image']:.3f} s/image (median {res['median_s']:.3f}, "
              f"n={len(times)}, {args.threads} threads, load {res['load_avg_1min']:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
