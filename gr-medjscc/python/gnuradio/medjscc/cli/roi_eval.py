"""``medjscc roi-eval``: Dice/IoU/speed of ROI backends on a DRR split."""
COMMAND = "roi-eval"
HELP = "evaluate ROI segmenters against the ground-truth lung masks (Dice, IoU, s/image)"


def add_arguments(parser):
    from .roi import add_backend_arguments

    add_backend_arguments(parser)
    parser.set_defaults(backend=None)
    parser.add_argument("--backends", default=None, help="comma-separated list (overrides --backend)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"], help="DRR data split")
    parser.add_argument("--limit", type=int, default=None, help="first N images of the split")
    parser.add_argument("--data", default=None, help="data set root (default: the DRR set)")
    parser.add_argument("--prompt", default=None, choices=["none", "gt-boxes"],
                        help="gt-boxes: one box per ground-truth region (default for litemedsam/sam2)")
    parser.add_argument("--box-margin", type=float, default=0.0,
                        help="grow ground-truth boxes by this fraction of the image size")
    parser.add_argument("--json", action="store_true", help="one JSON object per backend")


def run(args):
    import json
    import types

    from ..roi.evaluate import evaluate
    from .roi import segmenter_from_args

    names = [b.strip() for b in (args.backends or args.backend or "auto").split(",") if b.strip()]
    for name in names:
        seg = segmenter_from_args(types.SimpleNamespace(**{**vars(args), "backend": name}), data_root=args.data)
        res = evaluate(name, split=args.split, limit=args.limit, root=args.data, prompt=args.prompt,
                       box_margin=args.box_margin, segmenter=seg)
        if name in ("auto", "litemedsam"):
            adapter = getattr(getattr(seg, "refiner", None) or getattr(seg, "model", None), "adapter", None)
            res["litemedsam_adapter"] = str(adapter.name) if adapter else "none"
        if name == "auto":
            res["fusion"] = args.auto_fusion
        if args.json:
            print(json.dumps(res), flush=True)
        else:
            print(f"{name:11s} Dice {res['dice_mean']:.4f} (min {res['dice_min']:.4f})  IoU {res['iou_mean']:.4f}  "
                  f"{res['seconds_per_image']:.3f} s/image  side info {res['side_info_bits_mean']:.0f} bits "
                  f"(max {res['side_info_bits_max']})  n={res['n_images']} prompt={res['prompt']} "
                  f"fallbacks={res['fallbacks']}", flush=True)
