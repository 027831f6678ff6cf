"""How much can a variable number of analog symbols per image patch buy over the hybrid's residual?
(issue #13: "variable length over the residual >= +0.5 dB over uniform").

The hybrid (``codec/hybrid.py``) sends the JPEG2000 base's error ``image - base`` (ROI-weighted as
the shipped split says) as linear analog symbols over one full-frame DCT. A learned
variable-length JSCC over that residual would spend more symbols on the patches where the
residual is large. This bench bounds what that can be worth, with **oracle** statistics (every
variance exact and free: no side info charged, so a real entropy model can only do worse):

* ``full_frame``: the shipped transform, one full-frame DCT in ``hybrid.N_BANDS_DEFAULT`` radial
  bands, each band's exact variance;
* ``tiles<T>_uniform``: a DCT per T x T tile, the same radial bands inside each tile, each
  (tile, band)'s exact variance; every tile gets the same number of coefficients (its own
  largest-variance ones): uniform length;
* ``tiles<T>_variable``: the same units, the coefficients chosen over the whole image by variance:
  variable length (``min/max_per_tile`` says how unequal the lengths come out).

Every variant sends the same number of real coefficients (the shipped layout's analog symbols at
that SNR), power-allocated in closed form for LLSE decoding (``hybrid.power_allocation``), scaled
to unit mean power, over the same AWGN draws per slot; the base is the one the shipped split
sends, taken as decoded. Validation images only. ``oracle_side_bits``: what the tile variances
would cost if sent at 6 bits each (``hybrid.BAND_BITS``), for scale.

    OMP_NUM_THREADS=1 .venv/bin/python bench/residual_variable_length.py --images 6 --snr=-5,0,5,10,15,20 --json
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np


def tile_units(shape, tile: int, n_bands: int) -> np.ndarray:
    """(H*W,) unit label of each coefficient of ``tile_dct``'s layout: tile index * n_bands + band."""
    from gnuradio.medjscc.codec import hybrid

    h, w = shape
    labels, _ = hybrid.band_map((tile, tile), n_bands)
    n_tiles = (h // tile) * (w // tile)
    return (np.arange(n_tiles)[:, None] * n_bands + labels[None, :]).ravel()


def tile_dct(x: np.ndarray, tile: int) -> np.ndarray:
    """Orthonormal DCT of each T x T tile, tiles in raster order, each tile's coefficients raveled."""
    from scipy.fft import dctn

    h, w = x.shape
    t = x.reshape(h // tile, tile, w // tile, tile).transpose(0, 2, 1, 3)
    return dctn(t, axes=(2, 3), norm="ortho").reshape(-1)


def tile_idct(c: np.ndarray, shape, tile: int) -> np.ndarray:
    from scipy.fft import idctn

    h, w = shape
    t = idctn(c.reshape(h // tile, w // tile, tile, tile), axes=(2, 3), norm="ortho")
    return t.transpose(0, 2, 1, 3).reshape(h, w)


def unit_variances(coef: np.ndarray, unit: np.ndarray) -> np.ndarray:
    n = int(unit.max()) + 1
    return np.bincount(unit, weights=coef ** 2, minlength=n) / np.maximum(np.bincount(unit, minlength=n), 1)


def select_variable(lam: np.ndarray, unit: np.ndarray, n_real: int) -> np.ndarray:
    """The ``n_real`` coefficients of largest unit variance (ties: lower index), anywhere."""
    order = np.lexsort((np.arange(unit.size), -lam[unit]))
    return order[:n_real][lam[unit[order[:n_real]]] > 0]


def select_uniform(lam: np.ndarray, unit: np.ndarray, n_real: int, n_bands: int) -> np.ndarray:
    """The same count in every tile (``n_real // n_tiles``; the remainder to the first tiles), each
    tile's own coefficients of largest unit variance."""
    tile = unit // n_bands
    n_tiles = int(tile.max()) + 1
    per = np.full(n_tiles, n_real // n_tiles)
    per[:n_real % n_tiles] += 1
    out = []
    for t in range(n_tiles):
        idx = np.flatnonzero(tile == t)
        idx = idx[np.lexsort((idx, -lam[unit[idx]]))][:per[t]]
        out.append(idx[lam[unit[idx]] > 0])
    return np.concatenate(out)


def send_llse(coef: np.ndarray, unit: np.ndarray, lam: np.ndarray, sel: np.ndarray, n_analog: int,
              snr_db: float, noise: np.ndarray) -> np.ndarray:
    """Coefficients ``sel`` in slot order, closed-form powers for LLSE, unit mean power over the
    ``n_analog`` complex symbols, real slot noise ``noise`` (std sqrt(N0/2)); -> LLSE estimate of
    every coefficient (0 where not sent)."""
    from gnuradio.medjscc.codec import hybrid

    s2 = 10.0 ** (-snr_db / 10.0) / 2.0
    u = unit[sel]
    counts = np.bincount(u, minlength=lam.size)
    p = hybrid.power_allocation(lam, counts, float(n_analog), s2)
    g = np.where(lam > 0, np.sqrt(p / np.maximum(lam, 1e-300)), 0.0)[u]
    x = g * coef[sel]
    power = float(np.sum(x ** 2)) / n_analog
    if power > 0:   # exact normalisation (the shipped layer rounds this gain to a byte)
        g = g / math.sqrt(power)
    z = g * coef[sel] + noise[:sel.size]
    est = np.zeros_like(coef)
    est[sel] = g * lam[u] / (g ** 2 * lam[u] + s2) * z
    return est


SCALE_STEP_DB = 1.5   # tile energy quantiser of the separable model
SCALE_BITS = 5


def separable_variances(coef: np.ndarray, unit: np.ndarray, n_bands: int) -> np.ndarray:
    """Unit variances modelled as (tile energy scale) x (one band profile for all tiles), the
    scale quantised to ``SCALE_STEP_DB`` (``SCALE_BITS`` per tile): what a few bits per tile, or a
    predictor of them, could convey, instead of every (tile, band) variance."""
    lam = unit_variances(coef, unit)
    n_tiles = lam.size // n_bands
    cnt = np.bincount(unit, minlength=lam.size).reshape(n_tiles, n_bands).astype(float)
    per_tile = lam.reshape(n_tiles, n_bands)
    profile = np.exp(np.mean(np.log(np.maximum(per_tile, 1e-12)), axis=0))     # geometric mean over tiles
    energy = (per_tile * cnt).sum(axis=1)
    scale = energy / np.maximum((profile[None, :] * cnt).sum(axis=1), 1e-300)
    db = np.round(10.0 * np.log10(np.maximum(scale, 1e-30)) / SCALE_STEP_DB) * SCALE_STEP_DB
    return (10.0 ** (db / 10.0))[:, None] * profile[None, :]


def side_symbols(bits: int, efficiency: float) -> int:
    """Symbols ``bits`` of side info take at ``efficiency`` bits per symbol."""
    return int(math.ceil(bits / efficiency))


def variants(residual: np.ndarray, n_analog: int, snr_db: float, noise: np.ndarray, tiles, n_bands: int,
             efficiency: float | None = None):
    """-> {name: (estimated residual, per-tile counts or None)} for one weighted residual.
    ``efficiency``: bits per symbol at which a separable model's tile scales would ride (the base
    MCS): its ``_charged`` variant gives up that many analog symbols."""
    from scipy.fft import dctn, idctn

    from gnuradio.medjscc.codec import hybrid

    n_real = 2 * n_analog
    out = {}
    c = dctn(residual, norm="ortho").ravel()
    unit, _ = hybrid.band_map(residual.shape, n_bands)
    lam = unit_variances(c, unit)
    est = send_llse(c, unit, lam, select_variable(lam, unit, n_real), n_analog, snr_db, noise)
    out["full_frame"] = (idctn(est.reshape(residual.shape), norm="ortho"), None)
    for t in tiles:
        c = tile_dct(residual, t)
        unit = tile_units(residual.shape, t, n_bands)
        lam = unit_variances(c, unit)
        for kind, sel in (("uniform", select_uniform(lam, unit, n_real, n_bands)),
                          ("variable", select_variable(lam, unit, n_real))):
            est = send_llse(c, unit, lam, sel, n_analog, snr_db, noise)
            counts = np.bincount(unit[sel] // n_bands, minlength=int(unit.max()) // n_bands + 1)
            out[f"tiles{t}_{kind}"] = (tile_idct(est, residual.shape, t), counts)
        # separable model: exact lam only to rank and power the units; here lam is modelled
        lam_s = separable_variances(c, unit, n_bands).ravel()
        n_tiles = lam_s.size // n_bands
        runs = [("variable_separable", n_analog)]
        if efficiency:
            runs.append(("variable_separable_charged",
                         n_analog - side_symbols(n_tiles * SCALE_BITS, efficiency)))
        for kind, n_a in runs:
            if n_a <= 0:   # the tile scales alone would take every analog symbol
                continue
            sel = select_variable(lam_s, unit, 2 * n_a)
            est = send_llse(c, unit, lam_s, sel, n_a, snr_db, noise)
            counts = np.bincount(unit[sel] // n_bands, minlength=n_tiles)
            out[f"tiles{t}_{kind}"] = (tile_idct(est, residual.shape, t), counts)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="DRR root holding val/ (default: the project's DRR set)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--cbr", default="1/16")
    ap.add_argument("--snr", default="-5,0,5,10,15,20")
    ap.add_argument("--tiles", default="64,32", help="tile sizes (pixels; must divide the image)")
    ap.add_argument("--bands", type=int, default=16, help="radial bands per transform (full frame and tile)")
    ap.add_argument("--seed", type=int, default=11, help="noise seed")
    ap.add_argument("--json", action="store_true", help="one JSON object per SNR")
    args = ap.parse_args(argv)

    from gnuradio.medjscc.codec import hybrid
    from gnuradio.medjscc.errors import InputError
    from gnuradio.medjscc.evaluation import methods
    from gnuradio.medjscc.evaluation.sweep import _dataset, resolve_data_root
    from gnuradio.medjscc.metrics import image_metrics
    from gnuradio.medjscc.snr import parse_spec

    if args.split == "test":
        raise InputError("this bound is measured on validation images, never on the test split")
    t0 = time.time()
    tiles = [int(t) for t in args.tiles.split(",") if t.strip()]
    ds = _dataset(str(resolve_data_root(args.data, args.split)), args.images)
    cbr = parse_spec(args.cbr)[0]
    for snr in parse_spec(args.snr):
        acc: dict = {}
        spread: dict = {}
        label = None
        for i in range(len(ds)):
            it = ds[i]
            image, mask = it["image"], np.asarray(it["mask"], bool)
            if any(image.shape[0] % t or image.shape[1] % t for t in tiles):
                raise InputError(f"--tiles {args.tiles}: a tile size does not divide the image {image.shape}")
            n_total = methods.n_symbols(cbr, image.shape)
            split = hybrid.split_rule(snr, cbr=cbr)
            lay = hybrid.layout(n_total, snr, split)
            label = lay.label
            block, grid = hybrid.mask_block(mask, image.shape) if lay.rx_mask else (b"", None)
            base = np.full(image.shape, hybrid.GREY)
            if lay.has_base:
                data = hybrid._base_stream(image, mask, lay.codec, lay.base_stream_bytes - len(block))
                if data is not None:
                    base = hybrid._source(lay.codec).decode(data, image.shape).astype(float)
            w = hybrid.roi_weights(image.shape, lay.bg_weight, mask, grid)
            w = np.ones(image.shape) if w is None else w
            # a TX-only weight stays in the image (the RX cannot undo it), as in the hybrid
            undo = w if (lay.rx_mask or lay.bg_weight >= 1.0) else np.ones(image.shape)
            residual = (image.astype(float) - base) * w
            noise = np.random.default_rng([args.seed, i, int(round(10 * snr)) + 1000]).normal(
                0.0, math.sqrt(10.0 ** (-snr / 10.0) / 2.0), 2 * lay.n_analog)
            eff = lay.mcs.efficiency if lay.has_base else None
            for name, (est, counts) in variants(residual, lay.n_analog, snr, noise, tiles, args.bands, eff).items():
                recon = np.clip(np.round(base + est / undo), 0, 255).astype(np.uint8)
                m = image_metrics(image, recon, mask)
                acc.setdefault(name, []).append((m["roi_psnr"], m["psnr"]))
                if counts is not None:
                    spread.setdefault(name, []).append((int(counts.min()), int(counts.max())))
        rec = dict(bench="residual_variable_length", snr_db=snr, cbr=cbr, images=len(ds), split_label=label,
                   n_analog=lay.n_analog, oracle_side_bits={f"tiles{t}": (image.size // t ** 2) * args.bands
                                                            * hybrid.BAND_BITS for t in tiles})
        for name, v in acc.items():
            v = np.asarray(v)
            rec[name] = dict(roi_psnr=round(float(v[:, 0].mean()), 3), psnr=round(float(v[:, 1].mean()), 3))
            if name in spread:
                s = np.asarray(spread[name])
                rec[name].update(min_per_tile=int(s[:, 0].min()), max_per_tile=int(s[:, 1].max()))
        for t in tiles:
            rec[f"tiles{t}_variable_minus_uniform_roi_db"] = round(
                rec[f"tiles{t}_variable"]["roi_psnr"] - rec[f"tiles{t}_uniform"]["roi_psnr"], 3)
            rec[f"tiles{t}_variable_minus_full_frame_roi_db"] = round(
                rec[f"tiles{t}_variable"]["roi_psnr"] - rec["full_frame"]["roi_psnr"], 3)
        rec["seconds"] = round(time.time() - t0, 1)
        if args.json:
            print(json.dumps(rec), flush=True)
        else:
            print(f"{snr:6.1f} dB ({label}): " + "  ".join(
                f"{k} {v['roi_psnr']:.2f}/{v['psnr']:.2f}" for k, v in rec.items() if isinstance(v, dict)
                and "roi_psnr" in v), flush=True)
    return 0


if __name__ == "__main__":
    from bench_cli import run

    run(main, "residual_variable_length")
