#!/usr/bin/env python3
"""What a lost frame costs the codec: ROI-PSNR with every frame vs with one frame of the image lost.

    python bench/frame_loss.py --json [--model medjscc[,runs/x.pt]] [--snr 0,10,20] [--images 12]
                                      [--repeat-strong 0,0.2]

Each test DRR (oracle ROI, CBR 1/16) is encoded, cut into frames by ``phy.framing.frame_image``
(interleaved symbols, erasure-coded side info), each frame's payload gets AWGN at the SNR (the
same draws for every model), and the image is assembled and decoded with every frame and once
per frame with that frame missing. The receiver's decoding SNR rule is the one ``jscc_rx`` uses
(``erasure_snr_db``: the SNR the zero-filled symbols leave, counting a repeated symbol lost only when
both copies are). ``--repeat-strong``: shares of the strongest symbols sent twice within the same
CBR (``codec.repetition``; 0 = off). One record per (model, repeat_strong, snr_db):
``roi_psnr_all`` (every frame), ``roi_psnr_one_lost`` (mean over images and over which frame was
lost), ``frames_per_image`` (mean), ``side_info_ok`` (share of the one-lost cases whose side info
was rebuilt).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from phy_common import emit  # noqa: E402

COLUMNS = ["model", "repeat_strong", "snr_db", "roi_psnr_all", "roi_psnr_one_lost", "frames_per_image", "side_info_ok", "images"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="medjscc", help="comma-separated codec names or weights paths")
    ap.add_argument("--snr", default="0,10,20", help="SNR list in dB, e.g. 0,10,20 or -5:25:5")
    ap.add_argument("--images", type=int, default=12, help="test-split DRR images")
    ap.add_argument("--cbr", default="1/16", help="target CBR")
    ap.add_argument("--repeat-strong", default="0",
                    help="comma-separated shares of the strongest symbols sent twice (0 = off)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "2")

    import numpy as np

    from gnuradio.medjscc import demo, metrics
    from gnuradio.medjscc.blocks.jscc_rx import erasure_snr_db
    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.codec.api import Codec
    from gnuradio.medjscc.codec.repetition import code_for_fraction
    from gnuradio.medjscc.errors import MedJSCCError
    from gnuradio.medjscc.phy import ImageAssembler, OfdmParams, frame_image
    from gnuradio.medjscc.snr import complex_awgn, parse_number, parse_spec

    try:
        snrs = parse_spec(args.snr)
        cbr = parse_number(args.cbr)
        codecs = [(m, load_codec(m)) for m in args.model.split(",") if m.strip()]
        repeats = [float(r) for r in args.repeat_strong.split(",") if r.strip()]
        for r in repeats:
            code_for_fraction(r)
        if args.images < 1:
            raise MedJSCCError("--images must be at least 1")
    except (MedJSCCError, ValueError) as e:
        print(f"frame_loss: {e}", file=sys.stderr)
        return 2
    params = OfdmParams()
    images, masks, _ = demo._load_images(args.images, 0)
    for (name, codec), repeat in [(c, r) for c in codecs for r in repeats]:
        for snr in snrs:
            rng = np.random.default_rng([int(round(snr * 10)) & 0xFFFF, 7])   # same draws for every model
            full, lost, n_frames, side_ok = [], [], [], []
            for img, m in zip(images, masks):
                enc = codec.encode(img, m, snr_db=snr, cbr=cbr, repeat_strong=repeat)
                frames = frame_image(0, enc.symbols, enc.side_info, params)
                n_frames.append(len(frames))
                noisy = [(h, (pl + complex_awgn(pl.size, snr, rng)).astype(np.complex64)) for h, pl in frames]
                for missing in [None] + list(range(len(frames))):
                    asm = ImageAssembler(params)
                    for i, f in enumerate(noisy):
                        if i != missing:
                            asm.add(*f)
                    a = asm.assemble(0)
                    if missing is not None:
                        side_ok.append(a.side_info is not None)
                    dec_snr = erasure_snr_db(snr, float(np.mean(Codec.unique_erased(a.side_info, a.erased))))
                    out = codec.decode(a.symbols, a.side_info, img.shape, snr_db=dec_snr, erased=a.erased)
                    (full if missing is None else lost).append(metrics.roi_psnr(img, out, m))
            emit({"model": name, "repeat_strong": repeat, "snr_db": float(snr), "roi_psnr_all": float(np.mean(full)),
                  "roi_psnr_one_lost": float(np.mean(lost)), "frames_per_image": float(np.mean(n_frames)),
                  "side_info_ok": float(np.mean(side_ok)), "images": len(images)}, args.json, COLUMNS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
