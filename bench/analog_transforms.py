"""Which linear transform should the pure-analog Med-JSCC's linear path use? (issue #13, part 4)

The shipped pure-analog models carry their linear skip path in a 16x16 patch KLT. The hybrid's
analog layer uses one full-frame DCT, and untrained SoftCast over it was 3-4.5 dB ahead of the
trained patch path. The JSCC model needs a transform with one coefficient vector per 16x16
latent cell (variable length, ROI guidance and the convolutions all work per cell), so a plain
full-frame DCT cannot replace the KLT. This bench puts the candidates side by side as untrained
SoftCast codes of the image (no base layer), each with its exact per-unit variances (oracle side
info: the same advantage for all), closed-form power for LLSE decoding, unit mean power, and the
same AWGN draws per slot:

* ``full_frame_dct``: one DCT of the whole image in ``--bands`` radial bands (the hybrid's layer);
* ``patch_klt``: the 16x16 patch KLT (PCA of the training patches), the same count per cell;
* ``wavelet_tree``: the 4-level CDF 9/7 wavelet of the whole image, each cell's 256-coefficient
  tree as its channels (``layers.wavelet_trees``), the same count per cell;
* ``full_frame_wavelet``: ``layers.FullFrameWavelet``, the pure-analog model's full-frame linear
  path: the same trees, each cell's LL carried on through a wavelet over the cell grid (so the
  coarse structure is decorrelated across cells; its subbands are units of their own) and the
  details decorrelated by a per-cell KLT; the same count per cell.

CBR is the payload only (no side info): the comparison is between transforms. Validation images.

    OMP_NUM_THREADS=1 .venv/bin/python bench/analog_transforms.py --images 8 --snr=-5,0,5,10,20 --json
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from residual_variable_length import send_llse, unit_variances  # noqa: E402

CELL = 16
KLT_TRAIN_IMAGES = 64


def per_cell_code(coef_chw: np.ndarray, n_analog: int, snr_db: float, noise: np.ndarray,
                  channel0_units: np.ndarray | None = None) -> np.ndarray:
    """SoftCast over a (C, h, w) per-cell layout: every cell sends the same channels, the image's
    ``2 n_analog / (h w)`` channels of largest variance. ``channel0_units``: (h, w) labels that
    split channel 0 into units of their own (a coarse wavelet on the cell grid). -> LLSE estimate."""
    c, h, w = coef_chw.shape
    flat = coef_chw.reshape(-1)
    channel = np.repeat(np.arange(c), h * w)
    per_cell = min(c, (2 * n_analog) // (h * w))
    keep = np.lexsort((np.arange(c), -unit_variances(flat, channel)))[:per_cell]
    sel = np.flatnonzero(np.isin(channel, keep))
    unit = channel.copy()
    if channel0_units is not None:
        unit[: h * w] = c + np.asarray(channel0_units).reshape(-1)
    lam = unit_variances(flat, unit)
    return send_llse(flat, unit, lam, sel, n_analog, snr_db, noise).reshape(c, h, w)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="DRR root holding train/ and val/ (default: the project's DRR set)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--cbr", default="1/16")
    ap.add_argument("--snr", default="-5,0,5,10,20")
    ap.add_argument("--bands", type=int, default=16, help="radial bands of the full-frame DCT")
    ap.add_argument("--seed", type=int, default=11, help="noise seed")
    ap.add_argument("--json", action="store_true", help="one JSON object per SNR")
    args = ap.parse_args(argv)

    import torch
    from scipy.fft import dctn, idctn

    from gnuradio.medjscc.codec import hybrid
    from gnuradio.medjscc.codec.layers import (FullFrameWavelet, PatchKLT, coarse_units, inverse_wavelet_trees,
                                                   wavelet_trees)
    from gnuradio.medjscc.errors import InputError
    from gnuradio.medjscc.evaluation.sweep import _dataset, resolve_data_root
    from gnuradio.medjscc.metrics import image_metrics
    from gnuradio.medjscc.snr import parse_spec

    if args.split == "test":
        raise InputError("transforms are chosen on validation images, never on the test split")
    t0 = time.time()
    train = _dataset(str(resolve_data_root(args.data, "train")), KLT_TRAIN_IMAGES)
    train_imgs = [train[i]["image"].astype(np.float64) for i in range(len(train))]
    patch = PatchKLT(CELL * CELL, CELL).double()
    blocks = [im.reshape(im.shape[0] // CELL, CELL, im.shape[1] // CELL, CELL).transpose(0, 2, 1, 3).reshape(-1, CELL * CELL)
              for im in train_imgs]
    patch.init_from_patches(torch.from_numpy(np.concatenate(blocks)))
    full = FullFrameWavelet(CELL * CELL, CELL).double()
    full.init_from_images(train_imgs)
    tree_mean = torch.stack([wavelet_trees(torch.from_numpy(im)[None, None])[0].mean((1, 2)) for im in train_imgs]).mean(0)

    ds = _dataset(str(resolve_data_root(args.data, args.split)), args.images)
    cbr = parse_spec(args.cbr)[0]
    for snr in parse_spec(args.snr):
        acc: dict = {}
        for i in range(len(ds)):
            image, mask = ds[i]["image"], np.asarray(ds[i]["mask"], bool)
            if image.shape[0] % CELL or image.shape[1] % CELL:
                raise InputError(f"image {image.shape} is not a multiple of {CELL}")
            n_analog = int(round(cbr * image.size))
            noise = np.random.default_rng([args.seed, i, int(round(10 * snr)) + 1000]).normal(
                0.0, math.sqrt(10.0 ** (-snr / 10.0) / 2.0), 2 * n_analog)
            x = torch.from_numpy(image.astype(np.float64))[None, None]
            recon = {}


            c = dctn(image - hybrid.GREY, norm="ortho").ravel()
            unit, _ = hybrid.band_map(image.shape, args.bands)
            lam = unit_variances(c, unit)
            sel, _ = hybrid.selection(image.shape, args.bands, lam, 2 * n_analog)
            est = send_llse(c, unit, lam, sel, n_analog, snr, noise)
            recon["full_frame_dct"] = hybrid.GREY + idctn(est.reshape(image.shape), norm="ortho")
            with torch.no_grad():
                coef = patch.analysis(x)[0].numpy()
                est = per_cell_code(coef, n_analog, snr, noise)
                recon["patch_klt"] = patch.synthesis(torch.from_numpy(est)[None])[0, 0].numpy()
                trees = wavelet_trees(x)[0] - tree_mean[:, None, None]
                est = per_cell_code(trees.numpy(), n_analog, snr, noise)
                recon["wavelet_tree"] = inverse_wavelet_trees(torch.from_numpy(est)[None] + tree_mean[None, :, None, None])[0, 0].numpy()
                units0 = coarse_units(*trees.shape[-2:]).numpy()
                coef = full.analysis(x)[0].numpy()
                est = per_cell_code(coef, n_analog, snr, noise, units0)
                recon["full_frame_wavelet"] = full.synthesis(torch.from_numpy(est)[None])[0, 0].numpy()
            for name, r in recon.items():
                m = image_metrics(image, np.clip(np.round(r), 0, 255).astype(np.uint8), mask)
                acc.setdefault(name, []).append((m["roi_psnr"], m["psnr"]))
        rec = dict(bench="analog_transforms", snr_db=snr, cbr=cbr, images=len(ds), split=args.split)
        for name, v in acc.items():
            v = np.asarray(v)
            rec[name] = dict(roi_psnr=round(float(v[:, 0].mean()), 3), psnr=round(float(v[:, 1].mean()), 3))
        rec["seconds"] = round(time.time() - t0, 1)
        if args.json:
            print(json.dumps(rec), flush=True)
        else:
            print(f"{snr:6.1f} dB: " + "  ".join(f"{k} {v['roi_psnr']:.2f}/{v['psnr']:.2f}"
                                                 for k, v in rec.items() if isinstance(v, dict)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
