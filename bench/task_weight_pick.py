"""Pick hybrid-softcast-task's detectability weight per SNR (codec/detectability.py) on
**validation** nodule pairs, never test (issue #15).

For each weight of ``--weights`` and SNR of ``--snr``, every validation pair's present and absent
image is sent as ``hybrid-softcast`` sends it (the shipped split at that CBR) with the analog
layer's error weighted by the observer's spectrum, both images through the same channel draw
(symbol link, AWGN; a failed frame counts as what the receiver shows). Per point: the nodule
observer's AUC (``evaluation/observer.py``, cross-validated over the pairs as the sweep's task
does, bootstrap 95 % interval), d', and the mean PSNR / ROI-PSNR of the present images. Weight 0
is ``hybrid-softcast`` itself. The first line is the observer's AUC on the original images.

``--out`` writes the table ``detectability.weight_rule`` reads: per SNR the smallest weight whose
AUC is within ``--tolerance`` of the highest measured there (a larger weight costs PSNR; AUC
differences that small are within the observer's noise on these pairs). At run time an SNR takes
the row of the highest fitted SNR at or below it. Every point measured is kept beside the table.

    OMP_NUM_THREADS=1 .venv/bin/python bench/task_weight_pick.py --pairs 100 \\
        --weights 0,10,30,100,300,1000,3000 --snr=-5,0,5,10,15,20 --json \\
        --out gr-medjscc/python/gnuradio/medjscc/evaluation/codes/task_weights.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np


def pick_weights(points, tolerance: float) -> dict:
    """{SNR: the smallest weight whose AUC is within ``tolerance`` of the best at that SNR}."""
    out = {}
    for snr in sorted({p["snr_db"] for p in points}):
        here = [p for p in points if p["snr_db"] == snr]
        top = max(p["task_auc"] for p in here)
        out[f"{snr:g}"] = min(p["task_weight"] for p in here if p["task_auc"] >= top - tolerance)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=60, help="validation nodule pairs (rendered on first use)")
    ap.add_argument("--weights", default="0,10,30,100", help="task weights to compare (0: hybrid-softcast)")
    ap.add_argument("--snr", default="-5,0,5,10")
    ap.add_argument("--cbr", default="1/16")
    ap.add_argument("--seed", type=int, default=0, help="channel seed")
    ap.add_argument("--json", action="store_true", help="one JSON object per (weight, SNR)")
    ap.add_argument("--out", default=None, help="write the per-SNR table of the picked weights here")
    ap.add_argument("--tolerance", type=float, default=0.01,
                    help="pick the smallest weight whose AUC is within this of the best at that SNR")
    args = ap.parse_args(argv)

    from gnuradio.medjscc.codec import hybrid
    from gnuradio.medjscc.data.folder import read_image, read_mask
    from gnuradio.medjscc.data.nodules import ensure_nodule_set, load_pairs
    from gnuradio.medjscc.errors import InputError
    from gnuradio.medjscc.evaluation import channel as chan
    from gnuradio.medjscc.evaluation import methods, observer
    from gnuradio.medjscc.metrics import image_metrics
    from gnuradio.medjscc.snr import parse_spec

    if args.pairs < 4:
        raise InputError("--pairs must be at least 4 (the observer is cross-validated)")
    if not args.tolerance >= 0:
        raise InputError(f"--tolerance must be >= 0, got {args.tolerance}")
    try:
        weights = [float(w) for w in args.weights.split(",")]
    except ValueError:
        raise InputError(f"--weights: comma-separated numbers expected, got {args.weights!r}") from None
    t0 = time.time()
    root = ensure_nodule_set(args.pairs, "val")
    recs = load_pairs(root, "val", args.pairs)
    folder = root / "val"
    images = [{s: read_image(folder / "images" / f"{r[s]}.png") for s in ("present", "absent")} for r in recs]
    masks = [read_mask(folder / "masks" / f"{r['present']}.png") > 0 for r in recs]
    nodules = [r["nodule"] for r in recs]
    cbr = parse_spec(args.cbr)[0]
    link = methods.get_link("symbol", "awgn")
    points = []
    ref = observer.evaluate_images([p["present"] for p in images], [p["absent"] for p in images], nodules)
    reference = dict(bench="task_weight_pick", split="val", pairs=len(recs), images="original",
                     task_auc=round(ref.auc, 4), task_auc_lo=round(ref.auc_lo, 4), task_auc_hi=round(ref.auc_hi, 4))
    print(json.dumps(reference) if args.json else
          f"original images: AUC {ref.auc:.3f} [{ref.auc_lo:.3f}, {ref.auc_hi:.3f}]", flush=True)
    for snr in parse_spec(args.snr):
        for w in weights:
            rx = {"present": [], "absent": []}
            psnr, roi, ok = [], [], 0
            for i, (pair, mask) in enumerate(zip(images, masks)):
                n_total = methods.n_symbols(cbr, pair["present"].shape)
                split = replace(hybrid.split_rule(snr, cbr=n_total / mask.size), task_weight=w)
                seed_words = chan.channel_seed(args.seed, f"val-pair-{i}", snr, 0)   # one draw for both images
                for s in ("present", "absent"):
                    recon, good, _, label, _ = hybrid.sweep_point(pair[s], mask, snr, n_total, link, seed_words, split)
                    rx[s].append(recon)
                    ok += int(good)
                m = image_metrics(pair["present"], rx["present"][-1], mask)
                psnr.append(m["psnr"])
                roi.append(m["roi_psnr"])
            res = observer.evaluate_images(rx["present"], rx["absent"], nodules)
            out = dict(bench="task_weight_pick", split="val", pairs=len(recs), cbr=cbr, snr_db=snr, task_weight=w,
                       layout=label, task_auc=round(res.auc, 4), task_auc_lo=round(res.auc_lo, 4),
                       task_auc_hi=round(res.auc_hi, 4), task_dprime=round(res.dprime, 4),
                       psnr=round(float(np.mean(psnr)), 3), roi_psnr=round(float(np.mean(roi)), 3),
                       decoded=ok / (2 * len(recs)), seconds=round(time.time() - t0, 1))
            points.append(out)
            if args.json:
                print(json.dumps(out), flush=True)
            else:
                print(f"{snr:6.1f} dB  weight {w:<6g} AUC {res.auc:.3f} [{res.auc_lo:.3f}, {res.auc_hi:.3f}]  "
                      f"PSNR {out['psnr']:.2f}  ROI-PSNR {out['roi_psnr']:.2f} dB  ({label})", flush=True)
    if args.out:
        table = dict(bench="task_weight_pick", weights=pick_weights(points, args.tolerance),
                     fit=dict(split="val", pairs=len(recs), cbr=cbr, seed=args.seed, original=reference,
                              criterion=f"smallest weight within {args.tolerance:g} of the best task_auc",
                              seconds=round(time.time() - t0, 1), points=points,
                              command="python bench/task_weight_pick.py " + " ".join(sys.argv[1:] if argv is None else argv)))
        with open(args.out, "w") as f:
            json.dump(table, f, indent=1)
            f.write("\n")
        print(f"wrote {args.out}: " + ", ".join(f"{k} dB -> {w:g}" for k, w in table["weights"].items()),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    from bench_cli import run

    run(main, "task_weight_pick")
