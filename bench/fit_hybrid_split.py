"""Fit the hybrid codec's split rule (codec/hybrid.py) on the validation split (never test images).

For every SNR of ``--snr`` and every validation image, each candidate split is sent through the
seeded AWGN symbol link of the sweep (a failed frame counts as what the receiver shows):

* base share (0 = pure analog, ``--shares``) x base codec (``--codecs``) x base MCS backoff
  (``--backoffs``: the envelope rule's MCS for SNR - backoff) x the analog layer's weight outside
  the ROI (``--bg-weights``; 1 = no mask), and also, where the split has a base, weights whose
  receiver learns the mask and undoes them (``--rx-bg-weights``: the ROI grid code in the base
  payload, ``hybrid.Split.rx_mask``) x how the band variances reach the receiver: a side
  frame of ``--bands`` variances, or a prior (no side frame): the geometric mean over the
  validation images of the band variances that split's analog layer carries
  (``hybrid.PRIOR_BANDS`` bands), fitted at that SNR on ``--prior-images`` other validation
  images (so the choice is not judged on the images the prior came from).

``analog_prior`` (the band variances of ``image - 128`` on the prior images) serves a prior split
whose base is not sent (an SNR below the lowest MCS, a budget too small for the base).

At each SNR: the reference is the candidate without weight (bg weight 1) of best mean ROI-PSNR;
the split is the candidate of best mean ROI-PSNR among those whose mean whole-image PSNR is at
most ``--psnr-slack`` dB below the reference's (the ROI is not bought with the rest of the image).
Three tables are written: ``split`` (that choice), ``split_tx_mask`` (the same choice among the
candidates whose mask only the TX knows: the rule before ``rx_mask`` existed, the frames
medjscc-hda's refiner was trained on) and ``split_nomask`` (the best that uses no mask at all: no
weight, no ROI-JPEG2000; sweep method ``hybrid-softcast-nomask``, what the mask buys).
At run time an SNR uses the split of the highest fitted SNR at or below it.

``--merge`` adds the SNRs of this run to the existing ``--out`` file (same images, priors, CBR and
seed: each SNR's channel draws depend only on the seed, the image and the SNR, so a row is the same
whether it was fitted alone or in a grid) and keeps its other rows: how the 1/16 file got its
half-step rows (2.5, 7.5, ... dB), so a closed loop whose fed-back SNR sits just below a 5 dB
point does not fall back to the split of the point below.

    OMP_NUM_THREADS=1 .venv/bin/python bench/fit_hybrid_split.py \\
        --out gr-medjscc/python/gnuradio/medjscc/evaluation/codes/hybrid_split.json
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

import numpy as np


def analog_prior(items) -> list:
    """Pure-analog prior: geometric-mean band variances of ``image - 128`` over ``items``, quantised."""
    from gnuradio.medjscc.codec import hybrid

    logs = [np.log(np.maximum(hybrid.band_variances(it["image"].astype(float) - hybrid.GREY, hybrid.PRIOR_BANDS),
                              1e-30)) for it in items]
    return hybrid.quantise_variances(np.exp(np.mean(logs, axis=0))).tolist()


SPLIT_TABLES = ("split", "split_tx_mask", "split_nomask")
MERGE_KEYS = ("split", "data", "images", "prior_images", "cbr", "seed", "psnr_slack_db")


def merge_fits(old: dict, new: dict) -> dict:
    """``old`` with ``new``'s rows added (an SNR in both takes ``new``'s); refuses fits that differ
    in anything but their SNRs."""
    from gnuradio.medjscc.errors import InputError

    for k in MERGE_KEYS:
        if old["fit"].get(k) != new["fit"].get(k):
            raise InputError(f"cannot merge: {k} is {new['fit'].get(k)!r} here and {old['fit'].get(k)!r} in the file")
    if old.get("analog_prior") != new.get("analog_prior"):
        raise InputError("cannot merge: the analog prior differs (other prior images?)")
    by_snr = lambda d: dict(sorted(d.items(), key=lambda kv: float(kv[0])))   # noqa: E731
    fit = dict(old["fit"])
    fit["snr_db"] = sorted(set(old["fit"]["snr_db"]) | set(new["fit"]["snr_db"]))
    fit["mean_roi_psnr_psnr_decode_rate"] = by_snr({**old["fit"]["mean_roi_psnr_psnr_decode_rate"],
                                                    **new["fit"]["mean_roi_psnr_psnr_decode_rate"]})
    fit["seconds"] = round(old["fit"].get("seconds", 0) + new["fit"]["seconds"], 1)
    fit["merged_commands"] = list(old["fit"].get("merged_commands", [])) + [new["fit"]["command"]]
    tables = {k: by_snr({**old.get(k, {}), **new.get(k, {})}) for k in SPLIT_TABLES if k in old or k in new}
    return dict(old, **tables, fit=fit)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="DRR root holding val/ (default: the project's DRR set)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--prior-images", type=int, default=8, help="validation images the priors are fitted on")
    ap.add_argument("--cbr", default="1/16")
    ap.add_argument("--snr", default="-10:30:5", help="SNR grid (snr.parse_spec syntax)")
    ap.add_argument("--shares", default="0.15,0.3,0.45,0.6,0.75,0.9")
    ap.add_argument("--bands", default="16", help="side-frame band counts")
    ap.add_argument("--codecs", default="j2k-roi,j2k")
    ap.add_argument("--backoffs", default="0,2", help="base MCS backoffs in dB")
    ap.add_argument("--bg-weights", default="1,0.7,0.5", help="analog weights outside the ROI")
    ap.add_argument("--rx-bg-weights", default="0.7,0.5,0.4",
                    help="weights outside the ROI that the receiver undoes (it learns the mask); '' = none")
    ap.add_argument("--psnr-slack", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1234, help="channel seed (not the sweep's default 0)")
    ap.add_argument("--out", default=None, help="write the split JSON here")
    ap.add_argument("--merge", action="store_true",
                    help="add this run's SNRs to the existing --out file, keeping its other rows")
    args = ap.parse_args(argv)

    from gnuradio.medjscc.codec import hybrid
    from gnuradio.medjscc.errors import InputError
    from gnuradio.medjscc.evaluation import channel as chan
    from gnuradio.medjscc.evaluation import methods
    from gnuradio.medjscc.evaluation.sweep import _dataset, resolve_data_root
    from gnuradio.medjscc.metrics import image_metrics
    from gnuradio.medjscc.snr import parse_spec

    if args.split == "test":
        raise InputError("the split rule is fitted on validation images, never on the test split")
    if args.merge and not (args.out and os.path.isfile(args.out)):
        raise InputError("--merge needs an existing --out file to add rows to")
    t0 = time.time()
    root = resolve_data_root(args.data, args.split)
    ds = _dataset(str(root), args.images + args.prior_images)
    if len(ds) < args.images + args.prior_images:
        raise InputError(f"{root} holds {len(ds)} images, fewer than --images + --prior-images")
    items = [ds[i] for i in range(args.images)]
    prior_items = [ds[i] for i in range(args.images, args.images + args.prior_images)]
    cbr = parse_spec(args.cbr)[0]
    snrs = parse_spec(args.snr)
    shares = parse_spec(args.shares)
    bands = [int(b) for b in args.bands.split(",")]
    codecs = args.codecs.split(",")

    out = {"bench": "fit_hybrid_split", "split": {}}
    link = methods.SymbolLink("awgn")
    table = {}

    backoffs = parse_spec(args.backoffs)
    bgs = parse_spec(args.bg_weights)

    def prior_split(share, codec, snr, bg, back, rxm):
        dummy = hybrid.Split(share, hybrid.PRIOR_BANDS, codec, (0,) * hybrid.PRIOR_BANDS, bg, back, rxm)
        logs = [np.log(np.maximum(hybrid.base_residual_variances(it["image"], it["mask"], snr,
                                                                 methods.n_symbols(cbr, it["image"].shape), dummy),
                                  1e-30)) for it in prior_items]
        codes = hybrid.quantise_variances(np.exp(np.mean(logs, axis=0)))
        return hybrid.Split(share, hybrid.PRIOR_BANDS, codec, tuple(int(c) for c in codes), bg, back, rxm)

    rx_bgs = parse_spec(args.rx_bg_weights) if args.rx_bg_weights.strip() else []
    if any(not 0 < w < 1 for w in rx_bgs):
        raise InputError("--rx-bg-weights must lie in (0, 1)")

    def weightings(share):
        """(bg weight, rx_mask) pairs; a split without base has nowhere to carry the mask"""
        return [(bg, False) for bg in bgs] + ([(bg, True) for bg in rx_bgs] if share > 0 else [])

    out["split_tx_mask"], out["split_nomask"] = {}, {}
    out["analog_prior"] = analog_prior(prior_items)
    for snr in snrs:
        scores = {}
        cands = []
        for share in [0.0] + [s for s in shares if s > 0]:
            for codec in (["j2k"] if share == 0 else codecs):
                for back in ([0.0] if share == 0 else backoffs):
                    for bg, rxm in weightings(share):
                        cands += [hybrid.Split(share, b, codec, None, bg, back, rxm) for b in bands]
                        cands += [prior_split(share, codec, snr, bg, back, rxm)]
        for sp in cands:
            vals, whole, oks = [], [], []
            for it in items:
                n_total = methods.n_symbols(cbr, it["image"].shape)
                seed = chan.channel_seed(args.seed, it["name"], snr, 0)
                try:
                    recon, ok, _, label, _ = hybrid.sweep_point(it["image"], it["mask"], snr, n_total, link, seed, sp)
                except Exception as e:  # noqa: BLE001 - a split that cannot be laid out is no candidate
                    vals = None
                    print(f"  {snr:g} dB {sp}: {e}", file=sys.stderr)
                    break
                m = image_metrics(it["image"], recon, it["mask"])
                vals.append(m["roi_psnr"])
                whole.append(m["psnr"])
                oks.append(ok)
            if vals is None:
                continue
            key = (f"{sp.base_share:g}/{'prior' if sp.prior_codes else sp.n_bands}/{sp.codec}"
                   f"/bg{sp.bg_weight:g}{'m' if sp.rx_mask else ''}/back{sp.base_backoff_db:g}")
            scores[key] = (float(np.mean(vals)), float(np.mean(oks)), sp, float(np.mean(whole)))
        ref = max((v for v in scores.values() if v[2].bg_weight >= 1.0), key=lambda v: v[0])
        within = [v for v in scores.values() if v[3] >= ref[3] - args.psnr_slack]
        best = max(within, key=lambda v: v[0])
        sp = best[2]
        out["split"][f"{snr:g}"] = hybrid.split_to_json(sp)
        out["split_tx_mask"][f"{snr:g}"] = hybrid.split_to_json(
            max((v for v in within if not v[2].rx_mask), key=lambda v: v[0])[2])
        out["split_nomask"][f"{snr:g}"] = hybrid.split_to_json(
            max((v for v in scores.values() if not v[2].uses_mask), key=lambda v: v[0])[2])
        table[f"{snr:g}"] = {k: [round(v[0], 3), round(v[3], 3), round(v[1], 3)] for k, v in scores.items()}
        print(f"{snr:6.1f} dB: {sp}  ROI-PSNR {best[0]:.2f} dB PSNR {best[3]:.2f} dB (decoded {best[1]:.0%}); "
              f"no mask: {ref[0]:.2f} / {ref[3]:.2f} dB", flush=True)
    out["fit"] = {"split": args.split, "data": os.path.relpath(root) if not os.path.relpath(root).startswith("..")
                  else root.name, "images": len(items),
                  "prior_images": len(prior_items), "cbr": cbr, "seed": args.seed, "snr_db": snrs,
                  "mean_roi_psnr_psnr_decode_rate": table, "psnr_slack_db": args.psnr_slack,
                  "seconds": round(time.time() - t0, 1),
                  "command": "bench/fit_hybrid_split.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    if args.merge:
        out = merge_fits(json.load(open(args.out)), out)
    # one line per list of numbers (the fit table holds thousands of them)
    text = re.sub(r"\[\s+([-0-9.,\s]*?)\s+\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]",
                  json.dumps(out, indent=1)) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
