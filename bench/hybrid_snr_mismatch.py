"""The hybrid codec and the digital envelope when the transmitter is told a wrong SNR (issue #13:
"no cliff ... also when told an SNR 3 dB above the true one").

For each test image and true SNR, both schemes pick everything from the SNR they are told
(``true + --offset``): the envelope its MCS and codec, the hybrid its split, base MCS and analog
gains. The channel is the sweep's seeded AWGN symbol link at the true SNR (same draws for both);
the receivers know their own N0. ``medjscc-hda`` is the same hybrid frame received with the learned
refinement decoder (``codec/hda.py``; ``--no-refiner`` leaves it out). ``medjscc`` is the
pure-analog Med-JSCC (``--no-analog`` leaves it out): its CAU encodes for the told SNR and its
side info rides at the MCS for the told SNR, both through the true channel (its own draws), and
its decoder takes the SNR the receiver measures. Every scheme takes the split / rule / model
fitted at ``--cbr``. Prints mean ROI-PSNR / PSNR / decode rate per SNR and the largest drop
between neighbouring SNRs.

``--robust-share`` is a what-if for the hybrid (and the refiner on its frames): a two-layer
JPEG2000 base (``hybrid.Split.robust_share``), its first quality layer on that share of the base's
symbols at the MCS the rule picks ``--robust-backoff`` dB lower, so an over-estimated SNR loses
the finer layer only (``one_layer_rate``: the share of images shown with the first layer alone).

    OMP_NUM_THREADS=1 .venv/bin/python bench/hybrid_snr_mismatch.py --images 8 --offset 3
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import replace

import numpy as np


@contextlib.contextmanager
def _side_margin(margin_db):
    """The side-info MCS margin set to ``margin_db`` for the pure-analog model's frames only (the
    hybrid's side frame takes the same rule; it keeps the shipped margin)."""
    from gnuradio.medjscc.evaluation import envelope

    old = envelope.SIDE_INFO_EXTRA_MARGIN_DB
    envelope.SIDE_INFO_EXTRA_MARGIN_DB = old if margin_db is None else float(margin_db)
    try:
        yield
    finally:
        envelope.SIDE_INFO_EXTRA_MARGIN_DB = old


def _analog_told(codec, image, mask, told_db, snr_db, cbr, link, seed, side_margin_db=None):
    """Pure-analog Med-JSCC encoded for ``told_db``, through the channel at ``snr_db``: the
    sweep's ``methods.neural_point``. -> (recon, side info decoded)."""
    from gnuradio.medjscc.evaluation import methods

    with _side_margin(side_margin_db):
        recon, ok, _, _ = methods.neural_point(codec, image, mask, snr_db, cbr, link, seed, design_snr_db=told_db)
    return recon, ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--split", default="test")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--cbr", default="1/16")
    ap.add_argument("--snr", default="-5:25:5")
    ap.add_argument("--offset", type=float, default=3.0, help="told SNR - true SNR (dB)")
    ap.add_argument("--seed", type=int, default=0, help="channel seed (the sweep's default)")
    ap.add_argument("--base-backoff", type=float, default=None,
                    help="what-if: override the fitted split's base MCS backoff (dB) for the hybrid")
    ap.add_argument("--no-refiner", action="store_true", help="leave out medjscc-hda (the learned refinement)")
    ap.add_argument("--no-analog", action="store_true", help="leave out medjscc (the pure-analog model)")
    ap.add_argument("--side-margin", type=float, default=None,
                    help="what-if: medjscc's side-info MCS margin over the envelope rule's, in dB (default: the "
                         "shipped envelope.SIDE_INFO_EXTRA_MARGIN_DB)")
    ap.add_argument("--robust-share", type=float, default=0.0,
                    help="what-if: the hybrid's base in two layers, the first on this share of the base symbols "
                         "at a robust MCS (0: one layer, as shipped)")
    ap.add_argument("--robust-backoff", type=float, default=4.0,
                    help="what-if: dB below the base MCS's SNR at which the first layer's MCS is picked")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from gnuradio.medjscc.codec import hybrid
    from gnuradio.medjscc.evaluation import channel as chan
    from gnuradio.medjscc.evaluation import envelope, linkadapt, methods, source
    from gnuradio.medjscc.evaluation.sweep import _dataset, resolve_data_root
    from gnuradio.medjscc.metrics import image_metrics
    from gnuradio.medjscc.errors import InputError
    from gnuradio.medjscc.snr import parse_spec

    if not 0.0 <= args.robust_share < 1.0:
        raise InputError(f"--robust-share must lie in [0, 1), got {args.robust_share}")
    t0 = time.time()
    ds = _dataset(str(resolve_data_root(args.data, args.split)), args.images)
    cbr = parse_spec(args.cbr)[0]
    snrs = parse_spec(args.snr)
    link = methods.SymbolLink("awgn")
    rule = envelope.load_rule(cbr)
    res = {"hybrid-softcast": {}, "digital-envelope": {}}
    analog = None
    if not args.no_analog:
        analog = methods.neural_model("medjscc").codec
        res["medjscc"] = {}
    refiner = None
    if not args.no_refiner:
        from gnuradio.medjscc.codec.hda import load_refiner

        refiner = load_refiner()
        res["medjscc-hda"] = {}
    codecs = {}
    for snr in snrs:
        told = snr + args.offset
        acc = {k: [] for k in res}
        for i in range(len(ds)):
            it = ds[i]
            img, mask = it["image"], it["mask"]
            n = methods.n_symbols(cbr, img.shape)
            seed = chan.channel_seed(args.seed, it["name"], snr, 0)
            split = hybrid.split_rule(told, cbr=cbr)
            if args.base_backoff is not None:
                split = replace(split, base_backoff_db=args.base_backoff)
            if args.robust_share > 0 and split.base_share > 0:   # a two-layer base is plain JPEG2000
                split = replace(split, codec="j2k", robust_share=args.robust_share,
                                robust_backoff_db=args.robust_backoff)
            tx = hybrid.encode(img, mask, told, n, split)
            y, h, n0, _ = link.digital(tx.symbols, snr, seed)
            crc = dict(crc_side=tx.side_bits, crc_base=tx.base_bits, crc_robust=tx.robust_bits)
            rec, info = hybrid.decode(y, h, n0, img.shape, told, n, split, **crc)
            m = image_metrics(img, rec, mask)
            ok = info["side_ok"] and info["base_ok"] is not False
            one = info.get("base_layers") == 1
            acc["hybrid-softcast"].append((m["roi_psnr"], m["psnr"], ok, one))
            if refiner is not None:
                rec, _ = hybrid.decode(y, h, n0, img.shape, told, n, split, refiner=refiner, **crc)
                m = image_metrics(img, rec, mask)
                acc["medjscc-hda"].append((m["roi_psnr"], m["psnr"], ok, one))
            # the envelope: MCS and codec for the told SNR, frame through the true channel
            mcs = rule.pick(told)
            name = rule.codec(mcs.name)
            if name not in codecs:
                codecs[name] = source.get_source_codec(name)
            data = codecs[name].encode(img, linkadapt.plan(mcs, n).payload_bytes, mask)
            got = None if data is None else envelope.send_frame(data, mcs, n, link, snr, seed)
            rec_e = source.grey_image(img.shape) if got is None else codecs[name].decode(got, img.shape)
            m = image_metrics(img, rec_e, mask)
            acc["digital-envelope"].append((m["roi_psnr"], m["psnr"], got is not None, False))
            if analog is not None:
                rec_a, ok_a = _analog_told(analog, img, mask, told, snr, cbr, link, seed, args.side_margin)
                m = image_metrics(img, rec_a, mask)
                acc["medjscc"].append((m["roi_psnr"], m["psnr"], ok_a, False))
        for k, v in acc.items():
            a = np.asarray(v, float)
            res[k][snr] = {"roi_psnr": round(float(a[:, 0].mean()), 3), "psnr": round(float(a[:, 1].mean()), 3),
                           "decode_rate": round(float(a[:, 2].mean()), 3)}
            if k in ("hybrid-softcast", "medjscc-hda") and args.robust_share > 0:
                res[k][snr]["one_layer_rate"] = round(float(a[:, 3].mean()), 3)
        print(f"{snr:6.1f} dB (told {told:g}): " + "  ".join(
            f"{k} {res[k][snr]['roi_psnr']:.2f} dB ({res[k][snr]['decode_rate']:.0%})" for k in res), flush=True)
    summary = {}
    for k, pts in res.items():
        r = [pts[s]["roi_psnr"] for s in snrs]
        # the largest loss from one SNR to the next lower one
        summary[k] = {"largest_drop_db": round(float(np.max(np.diff(r))) if len(r) > 1 else 0.0, 3)}
    out = {"bench": "hybrid_snr_mismatch", "offset_db": args.offset, "base_backoff_override_db": args.base_backoff,
           "side_margin_override_db": args.side_margin, "robust_share": args.robust_share,
           "robust_backoff_db": args.robust_backoff if args.robust_share > 0 else None,
           "images": len(ds), "split": args.split,
           "cbr": cbr, "seed": args.seed,
           "points": {k: {f"{s:g}": v for s, v in pts.items()} for k, pts in res.items()},
           "summary": summary, "seconds": round(time.time() - t0, 1)}
    print(json.dumps(out, indent=1) if args.json else json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
