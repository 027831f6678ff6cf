#!/usr/bin/env python3
"""Training vs inference allocation: do the two paths give every latent position the same
number of channel symbols? (issue #16, "allocation is written twice")

    python bench/allocation_consistency.py --json [--model medjscc] [--limit 20] [--cbr 1/8,1/16,1/32,1/64]

Since the allocation plan is one function (``codec.plan.plan_allocation``: cell size from the
budget, the side-info fixed point, trimming, remainder), training's ``JSCCModel.allocate`` and
``Codec.encode`` differ only in what their configuration gives them: the training ROI weight
(``train.roi_rate_weight`` of the checkpoint) and, in train mode, CompressAI's noisy rate
estimate. The inference k-map is read back from the encoded image's side info and symbol count,
as the decoder derives it. Per CBR:

* ``same_roi_weight``: the training path with the inference ROI weight (the plan itself: it
  must agree everywhere);
* ``as_trained``: with the training ROI weight (eval-mode rate estimate);
* ``as_trained_train_mode``: and the train-mode rate estimate, seeded.

Reported per variant: the fraction of latent positions whose symbol count differs, the mean and
largest absolute difference (symbols per position), the mean totals and the images identical.
(Before the plan, training used 2x2 cells, a payload target without side info and no remainder:
96-99.7 % of the positions differed at CBR 1/8-1/64, commit 1ba9bd3.)
"""
from __future__ import annotations

import argparse
import json


def inference_kmap(codec, enc, shape):
    """(k-map, k-map before the remainder, cell size, remainder) the decoder derives from the side
    info and the symbol count."""
    from gnuradio.medjscc.codec import allocation, sideinfo

    cfg = codec.cfg
    latent = codec.latent_shape(shape)
    block = sideinfo.rate_block_of(enc.side_info)
    rate_idx, _ = sideinfo.unpack(enc.side_info, codec.cell_shape(shape, block), len(cfg.levels))
    k = allocation.symbols_per_position(rate_idx, latent, block, cfg.levels)
    remainder = int(enc.symbols.size - k.sum())
    return allocation.add_remainder(k, remainder, cfg.k_max), k, block, remainder


class TrainingPath:
    """``JSCCModel.allocate`` on one image as ``JSCCModel.forward`` calls it (ROI grid from
    ``train.roi_grid_from_masks``, rate from the hyperprior)."""

    def __init__(self, codec, image, mask, snr_db: float, train_mode: bool = False, seed: int = 0):
        import numpy as np
        import torch

        from gnuradio.medjscc.codec.train import roi_grid_from_masks

        model = codec.model
        self.codec = codec
        h, w = image.shape
        if h % 16 or w % 16:
            raise SystemExit(f"images must be multiples of 16 pixels (training crops are), got {w}x{h}")
        x = torch.from_numpy(image.astype(np.float32) / 255.0)[None, None]
        m = torch.from_numpy((mask if mask is not None else np.zeros_like(image, bool)).astype(np.float32))[None, None]
        self.roi = roi_grid_from_masks(m) if codec.cfg.use_roi else None
        roi_in = self.roi if self.roi is not None else torch.zeros(1, 1, h // 16, w // 16)
        snr = model.effective_snr(torch.tensor([float(snr_db)]))
        self.latent = (h // 16, w // 16)
        with torch.no_grad():
            y = model.analysis(x, roi_in, snr)
            if train_mode:   # CompressAI's training proxy: uniform noise instead of rounding
                model.train()
                try:
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(seed)
                        self.bits, _ = model.rate(y)
                finally:
                    model.eval()
            else:
                self.bits, _ = model.rate(y)

    def kmap(self, total: float, roi_weight: float):
        import torch

        cfg = self.codec.cfg
        saved = cfg.roi_rate_weight
        cfg.roi_rate_weight = float(roi_weight)
        try:
            k = self.codec.model.allocate(self.bits, self.roi, torch.tensor([float(total)]), (1,) + self.latent)
        finally:
            cfg.roi_rate_weight = saved
        return k[0].numpy()


def compare(k_train, k_inf) -> dict:
    import numpy as np

    d = np.abs(k_train.astype(np.int64) - k_inf.astype(np.int64))
    return {"positions_differ": float((d > 0).mean()), "mean_abs_diff": float(d.mean()),
            "max_abs_diff": int(d.max()), "total_train": int(k_train.sum()), "total_inference": int(k_inf.sum())}


def _mean_rows(rows: list[dict]) -> dict:
    import numpy as np

    out = {}
    for key in rows[0]:
        vals = [r[key] for r in rows]
        if key == "level_map_equal":
            out["level_maps_equal"] = int(sum(vals))
            continue
        out[key] = int(max(vals)) if key == "max_abs_diff" else float(np.mean(vals))
    out["images_identical"] = int(sum(r["positions_differ"] == 0 for r in rows))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="medjscc", help="variable-length model name or .pt path")
    ap.add_argument("--data", default=None, help="image folder (default: the DRR set)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=20, help="first N images")
    ap.add_argument("--cbr", default="1/8,1/16,1/32,1/64", help="total CBR list (inference) = payload CBR (training)")
    ap.add_argument("--snr", type=float, default=10.0, help="SNR the encoder's CAUs are told (dB)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="one JSON object per CBR")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.codec.datasets import load_pairs
    from gnuradio.medjscc.snr import parse_spec

    torch.set_num_threads(max(1, args.threads))
    codec = load_codec(args.model)
    if not codec.cfg.variable_length:
        raise SystemExit(f"model {args.model} is fixed length: both paths use allocate_fixed")
    train_roi_weight = (codec.meta.get("train") or {}).get("roi_rate_weight")
    train_roi_weight = codec.cfg.roi_rate_weight if train_roi_weight is None else float(train_roi_weight)
    pairs = load_pairs(args.data, args.split, args.limit)
    cbrs = parse_spec(args.cbr)
    variants = ("same_roi_weight", "as_trained", "as_trained_train_mode")
    per_cbr = {c: {**{v: [] for v in variants}, "blocks": [], "remainder": [], "side_info_symbols": [],
                   "roi_grid_differ": []} for c in cbrs}
    for i, p in enumerate(pairs):
        image, mask = p["image"], p["mask"]
        shape = image.shape
        train_path = TrainingPath(codec, image, mask, args.snr)
        noisy_path = TrainingPath(codec, image, mask, args.snr, train_mode=True, seed=i)
        inf_roi = codec._roi_grid(mask, shape)   # the grid the encoder sends (rule "any")
        for c in cbrs:
            enc = codec.encode(image, mask, snr_db=args.snr, cbr=c)
            k_inf, _, block, remainder = inference_kmap(codec, enc, shape)
            row = per_cbr[c]
            row["blocks"].append(block)
            row["remainder"].append(remainder)
            row["side_info_symbols"].append(float(enc.side_info_bits))
            if train_path.roi is not None and inf_roi is not None:
                row["roi_grid_differ"].append(float(((train_path.roi[0, 0].numpy() > 0.5) != inf_roi).mean()))
            total = c * image.size
            row["same_roi_weight"].append(compare(train_path.kmap(total, codec.cfg.roi_rate_weight), k_inf))
            row["as_trained"].append(compare(train_path.kmap(total, train_roi_weight), k_inf))
            row["as_trained_train_mode"].append(compare(noisy_path.kmap(total, train_roi_weight), k_inf))
    for c in cbrs:
        r = per_cbr[c]
        blocks = sorted(set(r["blocks"]))
        out = {"model": args.model, "split": args.split, "n_images": len(pairs), "snr_db": args.snr, "cbr": c,
               "train": {"roi_rate_weight": train_roi_weight, "budget": "cbr*H*W incl. side info (plan_allocation)"},
               "inference": {"rate_block": blocks[0] if len(blocks) == 1 else blocks,
                             "roi_rate_weight": codec.cfg.roi_rate_weight,
                             "side_info_symbols_mean": float(np.mean(r["side_info_symbols"])),
                             "remainder_mean": float(np.mean(r["remainder"]))},
               "roi_grid_cells_differ": float(np.mean(r["roi_grid_differ"])) if r["roi_grid_differ"] else None}
        for v in variants:
            out[v] = _mean_rows(r[v])
        if args.json:
            print(json.dumps(out))
        else:
            print(f"cbr {c:.5f}: cell size {out['inference']['rate_block']}; positions with another symbol count: "
                  + "; ".join(f"{v} {100 * out[v]['positions_differ']:.1f}% (mean |dk| {out[v]['mean_abs_diff']:.2f})"
                              for v in variants)
                  + f" ({len(pairs)} images; ROI weight {codec.cfg.roi_rate_weight:g} at inference, "
                    f"{train_roi_weight:g} in training)")


if __name__ == "__main__":
    main()
