"""Which frames medjscc-hda's refiner should receive once the hybrid's receiver can learn the ROI
mask (issue #13): the refiner (``codec/hda.py``) was trained on frames whose mask only the TX knew
(``split_tx_mask`` of the split file, what ``codec/hda_data.py`` makes); the shipped split
(``split``) now sends the ROI grid code where that is better and the receiver undoes the analog
layer's weight. On validation images (never the test split), per SNR: mean ROI-PSNR / PSNR of

* ``softcast_rx``: ``hybrid-softcast`` on the shipped split (no refiner),
* ``hda_tx``: the refiner on the frames it was trained on,
* ``hda_rx``: the refiner on the shipped split's frames (what ``medjscc-hda`` sends),

over the sweep's seeded AWGN symbol link (the same draws for the three).

    OMP_NUM_THREADS=1 .venv/bin/python bench/hda_rx_mask.py --images 12 --snr=2.5,5,7.5,10,12.5,15,20,25 --json
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="DRR root holding val/ (default: the project's DRR set)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--cbr", default="1/16")
    ap.add_argument("--snr", default="2.5,5,7.5,10,12.5,15,20,25")
    ap.add_argument("--seed", type=int, default=7, help="channel seed (not the sweep's default 0)")
    ap.add_argument("--refiner", default=None, help="refiner weights (default: the shipped hda_refiner)")
    ap.add_argument("--json", action="store_true", help="one JSON object per SNR")
    args = ap.parse_args(argv)

    from gnuradio.medjscc.codec import hybrid
    from gnuradio.medjscc.codec.hda import load_refiner
    from gnuradio.medjscc.errors import InputError
    from gnuradio.medjscc.evaluation import channel as chan
    from gnuradio.medjscc.evaluation import methods
    from gnuradio.medjscc.evaluation.sweep import _dataset, resolve_data_root
    from gnuradio.medjscc.metrics import image_metrics
    from gnuradio.medjscc.snr import parse_spec

    if args.split == "test":
        raise InputError("this choice is made on validation images, never on the test split")
    t0 = time.time()
    ds = _dataset(str(resolve_data_root(args.data, args.split)), args.images)
    cbr = parse_spec(args.cbr)[0]
    refiner = load_refiner() if args.refiner is None else load_refiner(args.refiner)
    link = methods.SymbolLink("awgn")
    for snr in parse_spec(args.snr):
        acc: dict = {}
        for i in range(len(ds)):
            it = ds[i]
            image, mask = it["image"], it["mask"]
            n = methods.n_symbols(cbr, image.shape)
            seed = chan.channel_seed(args.seed, it["name"], snr, 0)
            shipped = hybrid.split_rule(snr, cbr=cbr)
            trained = hybrid.split_rule(snr, cbr=cbr, rx_mask=False)
            for name, split, ref in (("softcast_rx", shipped, None), ("hda_tx", trained, refiner),
                                     ("hda_rx", shipped, refiner)):
                recon, ok, _, _, _ = hybrid.sweep_point(image, mask, snr, n, link, seed, split, refiner=ref)
                m = image_metrics(image, recon, mask)
                acc.setdefault(name, []).append((m["roi_psnr"], m["psnr"], ok))
        row = {"snr_db": snr, "images": len(ds), "cbr": cbr, "split": args.split, "seed": args.seed,
               "shipped_rx_mask": bool(hybrid.split_rule(snr, cbr=cbr).rx_mask)}
        for name, v in acc.items():
            a = np.asarray(v, float)
            row[name] = {"roi_psnr": round(float(a[:, 0].mean()), 3), "psnr": round(float(a[:, 1].mean()), 3),
                         "decode_rate": round(float(a[:, 2].mean()), 3)}
        row["seconds"] = round(time.time() - t0, 1)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"{snr:5.1f} dB  " + "  ".join(f"{k} {row[k]['roi_psnr']:.2f}/{row[k]['psnr']:.2f}" for k in acc),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
