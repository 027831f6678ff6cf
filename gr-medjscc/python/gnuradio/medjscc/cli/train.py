"""``medjscc train``: train a codec from a YAML config (models/configs/<name>.yaml)."""
COMMAND = "train"
HELP = "train a JSCC codec model from models/configs/<name>.yaml (seeded, resumable)"


def add_arguments(parser):
    parser.add_argument("--config", required=True, help="training config YAML (models/configs/<name>.yaml)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--resume", action="store_true", help="continue from runs/<name>/last.pt (checked against its last.pt.sha256)")
    parser.add_argument("--data", default=None, help="data root (default: the DRR set)")
    parser.add_argument("--runs", default=None, help="folder for checkpoints/logs (default: <repo>/runs)")
    parser.add_argument("--out", default=None, help="weights output (default: models/<name>.pt)")
    parser.add_argument("--steps", type=int, default=None, help="override the config's step count (smoke tests)")
    parser.add_argument("--synthetic", action="store_true", help="train on synthetic images (smoke test only)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    from ..codec.train import train

    out = train(args.config, device=args.device, resume=args.resume, data_root=args.data,
                runs_dir=args.runs, out_path=args.out, synthetic=args.synthetic, steps=args.steps,
                progress=not args.no_progress)
    print(out)
