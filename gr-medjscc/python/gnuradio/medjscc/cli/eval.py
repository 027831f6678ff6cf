"""``medjscc eval``: image quality of a codec over a simulated channel (DRR test split by default)."""
COMMAND = "eval"
HELP = "evaluate a codec (PSNR, ROI-PSNR, MS-SSIM, CBR) over AWGN/Rayleigh for SNR x CBR grids"


def add_arguments(parser):
    parser.add_argument("--model", default="medjscc", help="medjscc, ntscc, adjscc, deepjscc or a .pt path")
    parser.add_argument("--channel", default="awgn",
                        choices=["awgn", "rayleigh", "rayleigh_iid", "rayleigh_block256", "rayleigh_block1536",
                                 "rayleigh_frame"],
                        help="symbol-level channel, MMSE-equalised (rayleigh = rayleigh_block256, 256-symbol "
                             "blocks as in training; see channel_models)")
    parser.add_argument("--snr", default="10", help="SNR list '0,5,10' or range '-5:25:5' (dB)")
    parser.add_argument("--cbr", default="1/16", help="total CBR list/range, fractions allowed ('1/64,1/16')")
    parser.add_argument("--data", default=None, help="image folder (default: the DRR data set)")
    parser.add_argument("--split", default="test", help="data split (train/val/test)")
    parser.add_argument("--limit", type=int, default=None, help="use the first N images")
    parser.add_argument("--roi", default="oracle", choices=["oracle", "auto"],
                        help="mask given to the encoder: ground truth or the auto segmenter")
    parser.add_argument("--seed", type=int, default=0, help="channel seed (same draws for every method)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N or mps")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    # Inference-time allocation experiments: the decoder reads the allocation from the side info,
    # so these change the encoder's choice without retraining.
    parser.add_argument("--alloc-score-power", type=float, default=None, metavar="P",
                        help="variable-length models: allocation score = (bits + 1) ** P (0 = uniform levels; "
                             "default: the model's own)")
    # codec.api.ALLOCATION_SCORES (spelled out: importing the codec here would load torch for --help)
    parser.add_argument("--alloc-score", choices=["entropy", "energy"], default="entropy",
                        help="variable-length models: allocate by the hyperprior's estimated bits (the design) "
                             "or by the strongest latent coefficients (an encoder-side what-if)")
    parser.add_argument("--alloc-roi-weight", type=float, default=None, metavar="W",
                        help="ROI models: multiply the ROI cells' allocation score by W (default: the model's own)")


def run(args):
    import json
    import sys

    import torch

    from ..codec.api import load_codec
    from ..codec.datasets import load_pairs
    from ..codec.evaluate import KEYS, encoder_masks, evaluate
    from ..errors import InputError
    from ..snr import parse_spec

    try:
        snrs, cbrs = parse_spec(args.snr), parse_spec(args.cbr)
    except ValueError as e:
        raise InputError(f"--snr/--cbr: {e}") from None
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be >= 1")
    torch.set_num_threads(max(1, args.threads))
    codec = load_codec(args.model, device=args.device)
    if args.alloc_score_power is not None:
        if not 0 <= args.alloc_score_power <= 8:
            raise InputError(f"--alloc-score-power must be in [0, 8], got {args.alloc_score_power:g}")
        codec.cfg.score_power = float(args.alloc_score_power)
    if args.alloc_roi_weight is not None:
        if not 0 < args.alloc_roi_weight <= 1000:
            raise InputError(f"--alloc-roi-weight must be in (0, 1000], got {args.alloc_roi_weight:g}")
        codec.cfg.roi_rate_weight = float(args.alloc_roi_weight)
    codec.allocation_score = args.alloc_score
    pairs = load_pairs(args.data, args.split, args.limit)
    masks = encoder_masks(pairs, args.roi)
    from tqdm import tqdm

    # progress on stderr (a terminal only: disable=None), results on stdout
    bar = tqdm(total=len(snrs) * len(cbrs) * len(pairs), desc="eval", unit="img", file=sys.stderr,
               disable=None, leave=False)
    if not args.json:
        print(f"{'method':10s} {'channel':8s} {'snr_db':>6s} {'cbr_tgt':>8s} {'cbr_pay':>8s} {'cbr_tot':>8s} "
              f"{'psnr':>6s} {'roi_psnr':>8s} {'ms_ssim':>7s} {'n':>4s}")
    for row in evaluate(codec, pairs, args.channel, snrs, cbrs, masks, seed=args.seed, progress=bar.update):
        bar.clear()
        if args.json:
            out = {k: row[k] for k in KEYS}
            out["side_info_bits"] = row["side_info_bits"]
            out["roi"] = args.roi
            print(json.dumps(out))
        else:
            print(f"{row['method']:10s} {row['channel']:8s} {row['snr_db']:6.1f} {row['cbr_target']:8.5f} "
                  f"{row['cbr_payload']:8.5f} {row['cbr_total']:8.5f} {row['psnr']:6.2f} {row['roi_psnr']:8.2f} "
                  f"{row['ms_ssim']:7.4f} {row['n_images']:4d}")
        sys.stdout.flush()
        bar.refresh()
    bar.close()
