"""``medjscc roi-train``: train the coarse lung U-Net (and the LiteMedSAM DRR read-out adapter)."""
COMMAND = "roi-train"
HELP = "train the ROI models on the DRR train split (coarse U-Net for auto; LiteMedSAM adapter)"


def add_arguments(parser):
    parser.add_argument("--what", default="coarse", choices=["coarse", "litemedsam"],
                        help="coarse: models/roi_coarse.pt; litemedsam: models/roi_litemedsam_drr.pt")
    parser.add_argument("--out", default=None, help="output weights (default: in models/)")
    parser.add_argument("--data", default=None, help="DRR data root (default: the default DRR set)")
    parser.add_argument("--epochs", type=int, default=14, help="coarse: epochs")
    parser.add_argument("--size", type=int, default=96, help="coarse: input size")
    parser.add_argument("--steps", type=int, default=800, help="litemedsam adapter: optimiser steps")
    parser.add_argument("--limit", type=int, default=None,
                        help="train images (default: all for coarse, 100 for the adapter)")
    parser.add_argument("--val-limit", type=int, default=20, help="litemedsam adapter: val images")
    parser.add_argument("--seed", type=int, default=0, help="training seed (weights init, batches)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def run(args):
    import json

    if args.what == "coarse":
        from ..roi.coarse import default_path, train_coarse

        res = train_coarse(args.out or default_path(), root=args.data, epochs=args.epochs, size=args.size,
                           seed=args.seed, limit=args.limit, threads=args.threads)
        res.pop("history", None)
    else:
        from ..roi.adapt import default_path
        from ..roi.adapt_train import train_adapter

        res = train_adapter(args.out or default_path(), root=args.data, limit=args.limit or 100,
                            val_limit=args.val_limit, steps=args.steps, seed=args.seed, threads=args.threads)
    print(json.dumps(res))
