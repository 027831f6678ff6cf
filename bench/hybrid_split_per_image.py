"""Would a split of symbols between the hybrid's layers chosen per image beat the split chosen per
SNR? (issue #13: "the CAU decides the split of symbols between the layers").

The shipped hybrid (``codec/hybrid.py``) takes its base layer's share of the symbols from the
fed-back SNR alone (``hybrid.split_rule``, fitted on validation images). A unit that looked at the
image as well could pick a share per image, at the price of carrying the share in the side info.
This bench bounds what that could buy, with an **oracle**: every candidate share is sent through
the sweep's seeded AWGN symbol link (the same channel draw per image and SNR for every share, a
failed frame counting as what the receiver shows), and ``oracle`` keeps, for each image, the share
that came out best. No side info is charged for it, so a real per-image decision can only do worse.

Every candidate is the shipped split at that SNR with only its base share changed. Where the
shipped split has a prior (band variances known at both ends, no side frame), each candidate gets
its own, fitted as ``bench/fit_hybrid_split.py`` does on ``--prior-images`` other validation images
(the next ones after ``--images``); ``shipped`` is the split the rule really sends. Per SNR:
the mean ROI-PSNR of each share over the images, the best fixed share, the per-image oracle and
``oracle_minus_best_fixed_db``. Validation images by default; ``--refiner`` receives every
frame with ``medjscc-hda``'s learned refiner (was the split fitted for the LLSE receiver also the
refiner's best?).

    OMP_NUM_THREADS=1 .venv/bin/python bench/hybrid_split_per_image.py --images 16 --snr=-5,0,5,10,15,20 --json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np


def per_image_oracle(roi: np.ndarray, shares) -> dict:
    """``roi``: (images, shares) ROI-PSNR, NaN where a share could not be sent. -> the mean per
    share, the best fixed share and its mean, and the mean of each image's best share."""
    roi = np.asarray(roi, float)
    if roi.ndim != 2 or roi.shape[1] != len(shares):
        raise ValueError(f"roi: expected (images, {len(shares)}), got {roi.shape}")
    # a share that cannot be sent for an image is never that image's pick, and drags no mean
    filled = np.where(np.isfinite(roi), roi, -np.inf)
    mean = np.array([np.mean(filled[:, j]) if np.isfinite(filled[:, j]).all() else -np.inf
                     for j in range(len(shares))])
    best = int(np.argmax(mean))
    oracle = float(np.mean(filled.max(axis=1)))
    picks = filled.argmax(axis=1)
    return dict(mean_per_share={f"{s:g}": (round(float(m), 3) if np.isfinite(m) else None)
                                for s, m in zip(shares, mean)},
                best_fixed_share=float(shares[best]), best_fixed_roi_psnr=round(float(mean[best]), 3),
                oracle_roi_psnr=round(oracle, 3),
                oracle_minus_best_fixed_db=round(oracle - float(mean[best]), 3),
                oracle_share_counts={f"{s:g}": int(np.sum(picks == j)) for j, s in enumerate(shares)})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="DRR root holding the split (default: the project's DRR set)")
    ap.add_argument("--split", default="val", help="image split (val; the rule was fitted there)")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--cbr", default="1/16")
    ap.add_argument("--snr", default="-5,0,5,10,15,20")
    ap.add_argument("--shares", default="0,0.15,0.3,0.45,0.6,0.75,0.9", help="candidate base shares")
    ap.add_argument("--prior-images", type=int, default=8, help="images each candidate's prior is fitted on")
    ap.add_argument("--seed", type=int, default=1234, help="channel seed (the split fit's)")
    ap.add_argument("--refiner", action="store_true",
                    help="receive with medjscc-hda's learned refiner (models/hda_refiner.pt) instead of the LLSE alone")
    ap.add_argument("--json", action="store_true", help="one JSON object per SNR, no progress bar")
    args = ap.parse_args(argv)

    from tqdm import tqdm

    from gnuradio.medjscc.codec import hybrid
    from gnuradio.medjscc.errors import InputError
    from gnuradio.medjscc.evaluation import channel as chan
    from gnuradio.medjscc.evaluation import methods
    from gnuradio.medjscc.evaluation.sweep import _dataset, resolve_data_root
    from gnuradio.medjscc.metrics import image_metrics
    from gnuradio.medjscc.snr import parse_spec

    shares = [float(s) for s in args.shares.split(",") if s.strip()]
    if not shares or any(not 0.0 <= s < 1.0 for s in shares):
        raise InputError(f"--shares {args.shares!r}: each share must lie in [0, 1)")
    if args.images < 1:
        raise InputError("--images must be at least 1")
    t0 = time.time()
    cbr = parse_spec(args.cbr)[0]
    ds = _dataset(str(resolve_data_root(args.data, args.split)), args.images + args.prior_images)
    if len(ds) < args.images + args.prior_images:
        raise InputError(f"the {args.split} split holds {len(ds)} images, fewer than --images + --prior-images")
    prior_items = [ds[i] for i in range(args.images, args.images + args.prior_images)]
    n_eval = args.images

    def candidate(rule, share, snr):
        if rule.prior_codes is None:
            return replace(rule, base_share=share)
        dummy = replace(rule, base_share=share, n_bands=hybrid.PRIOR_BANDS, prior_codes=(0,) * hybrid.PRIOR_BANDS)
        logs = [np.log(np.maximum(hybrid.base_residual_variances(
            it["image"], it["mask"], snr, methods.n_symbols(cbr, it["image"].shape), dummy), 1e-30))
            for it in prior_items]
        return replace(dummy, prior_codes=tuple(int(c) for c in hybrid.quantise_variances(np.exp(np.mean(logs, 0)))))
    snrs = parse_spec(args.snr)
    link = methods.SymbolLink("awgn")
    refiner = None
    if args.refiner:
        from gnuradio.medjscc.codec.hda import load_refiner

        refiner = load_refiner()
    bar = tqdm(total=len(snrs) * n_eval, desc="hybrid_split_per_image", unit="img", file=sys.stderr,
               disable=True if args.json else None)
    for snr in snrs:
        rule = hybrid.split_rule(snr, cbr=cbr)
        cands = [candidate(rule, share, snr) for share in shares]
        roi = np.full((n_eval, len(shares)), np.nan)
        shipped = []
        for i in range(n_eval):
            it = ds[i]
            image, mask = it["image"], it["mask"]
            n_total = methods.n_symbols(cbr, image.shape)
            seed = chan.channel_seed(args.seed, it["name"], snr, 0)
            for j, sp in enumerate(cands):
                recon, _, _, _, _ = hybrid.sweep_point(image, mask, snr, n_total, link, seed, sp, refiner)
                roi[i, j] = image_metrics(image, recon, mask)["roi_psnr"]
            recon, _, _, _, _ = hybrid.sweep_point(image, mask, snr, n_total, link, seed, rule, refiner)
            shipped.append(image_metrics(image, recon, mask)["roi_psnr"])
            bar.update()
        rec = dict(bench="hybrid_split_per_image", snr_db=snr, cbr=cbr, split=args.split, images=n_eval,
                   receiver="medjscc-hda" if refiner is not None else "hybrid-softcast",
                   prior_images=len(prior_items),
                   shipped_share=rule.base_share, shipped_roi_psnr=round(float(np.mean(shipped)), 3),
                   **per_image_oracle(roi, shares), seconds=round(time.time() - t0, 1))
        if args.json:
            print(json.dumps(rec), flush=True)
        else:
            bar.write(f"{snr:5.1f} dB: best fixed share {rec['best_fixed_share']:g} "
                      f"{rec['best_fixed_roi_psnr']:.2f} dB, per-image oracle {rec['oracle_roi_psnr']:.2f} dB "
                      f"({rec['oracle_minus_best_fixed_db']:+.2f}), shipped {rec['shipped_roi_psnr']:.2f} dB")
    bar.close()
    return 0


if __name__ == "__main__":
    from bench_cli import run

    run(main, "hybrid_split_per_image")
