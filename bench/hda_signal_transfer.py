"""How much of a nodule's signal the hybrid carries, with and without medjscc-hda's refiner
(issue #15: the refiner gains ROI-PSNR but loses nodule-detection AUC).

For each **validation** nodule pair (``data.nodules``, rendered on first use) and SNR, the present
and the absent image are sent as the frames ``hybrid-softcast`` / ``medjscc-hda`` send (the
shipped split), through the same analog noise draw, as the refiner's lesion-aware training does
(``codec/hda.py``); the digital frames decoded. Per SNR, the mean over pairs of the
signal-transfer loss (``codec/lesion.py``: the error energy of the blurred present-minus-absent
difference within two nodule radii, relative to the signal's; 0 = the nodule carried whole,
1 = gone) of

* ``llse``: the training-free receiver's output (``hybrid-softcast``),
* ``refined``: the shipped refiner's output (``medjscc-hda``), or ``--refiner`` another one,

and their ROI-PSNR over the present images (``signal_transfer_median`` beside the mean: where the
base is small, the two images' JPEG2000 streams differ around the nodule and a few pairs' loss
exceeds 1, more error than signal). A cheaper, lower-variance check than the observer's
AUC, for choosing a retrained refiner on validation data.

    OMP_NUM_THREADS=1 .venv/bin/python bench/hda_signal_transfer.py --pairs 20 --snr=-5,0,5,10 --json
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=20, help="validation nodule pairs (rendered on first use)")
    ap.add_argument("--cbr", default="1/16")
    ap.add_argument("--snr", default="-5,0,5,10")
    ap.add_argument("--refiner", default=None, help="refiner weights (default: the shipped hda_refiner)")
    ap.add_argument("--window", type=float, default=2.0, help="disc around the nodule, in nodule radii")
    ap.add_argument("--seed", type=int, default=5, help="noise seed")
    ap.add_argument("--json", action="store_true", help="one JSON object per SNR")
    args = ap.parse_args(argv)

    import torch

    from gnuradio.medjscc.codec import hybrid
    from gnuradio.medjscc.codec.hda import load_refiner
    from gnuradio.medjscc.codec.hda_data import hybrid_sample
    from gnuradio.medjscc.codec.lesion import signal_transfer_loss
    from gnuradio.medjscc.data.folder import read_image, read_mask
    from gnuradio.medjscc.data.nodules import ensure_nodule_set, load_pairs
    from gnuradio.medjscc.errors import InputError
    from gnuradio.medjscc.evaluation import methods
    from gnuradio.medjscc.metrics import image_metrics
    from gnuradio.medjscc.snr import parse_spec

    if args.pairs < 1:
        raise InputError("--pairs must be at least 1")
    t0 = time.time()
    refiner = load_refiner() if args.refiner is None else load_refiner(args.refiner)
    root = ensure_nodule_set(args.pairs, "val")
    recs = load_pairs(root, "val", args.pairs)
    folder = root / "val"
    cbr = parse_spec(args.cbr)[0]
    t = lambda a: torch.from_numpy(np.asarray(a, np.float32) / 255.0)[None, None]   # noqa: E731
    for snr in parse_spec(args.snr):
        loss = {"llse": [], "refined": []}
        roi = {"llse": [], "refined": []}
        for i, rec in enumerate(recs):
            images = {s: read_image(folder / "images" / f"{rec[s]}.png") for s in ("present", "absent")}
            mask = read_mask(folder / "masks" / f"{rec['present']}.png") > 0
            n_total = methods.n_symbols(cbr, images["present"].shape)
            lay = hybrid.layout(n_total, snr, hybrid.split_rule(snr, cbr=cbr))
            out = {}
            for s, image in images.items():
                stream = None
                if lay.has_base:
                    block = hybrid.mask_block(mask, image.shape)[0] if lay.rx_mask else b""
                    stream = hybrid._base_stream(image, mask, lay.codec, lay.base_stream_bytes - len(block))
                rx, base, has_base = hybrid_sample(image, mask, snr, snr, n_total, stream,
                                                   np.random.default_rng([args.seed, i]), "shipped")
                out[s] = (rx, refiner(rx, base, has_base, snr, snr, cbr))
            cy, cx = rec["nodule"]["centre_px"]
            yy, xx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
            win = t((yy - cy) ** 2 + (xx - cx) ** 2 <= (args.window * rec["nodule"]["radius_px"]) ** 2) * 255.0
            for k, name in enumerate(("llse", "refined")):
                loss[name].append(float(signal_transfer_loss(t(out["present"][k]), t(out["absent"][k]),
                                                             t(images["present"]), t(images["absent"]), win)))
                roi[name].append(image_metrics(images["present"], out["present"][k], mask)["roi_psnr"])
        rec_out = dict(bench="hda_signal_transfer", snr_db=snr, cbr=cbr, pairs=len(recs), split="val",
                       layout=lay.label, refiner_sha256=refiner.sha256[:16])
        for name in ("llse", "refined"):
            rec_out[name] = dict(signal_transfer=round(float(np.mean(loss[name])), 4),
                                 signal_transfer_median=round(float(np.median(loss[name])), 4),
                                 roi_psnr=round(float(np.mean(roi[name])), 3))
        rec_out["seconds"] = round(time.time() - t0, 1)
        if args.json:
            print(json.dumps(rec_out), flush=True)
        else:
            print(f"{snr:6.1f} dB: signal transfer loss llse {rec_out['llse']['signal_transfer']:.3f} refined "
                  f"{rec_out['refined']['signal_transfer']:.3f}; ROI-PSNR {rec_out['llse']['roi_psnr']:.2f} / "
                  f"{rec_out['refined']['roi_psnr']:.2f} dB", flush=True)
    return 0


if __name__ == "__main__":
    from bench_cli import run

    run(main, "hda_signal_transfer")
