"""``medjscc roi``: segment the lungs of one image and write the mask (and an overlay)."""
COMMAND = "roi"
HELP = "segment the lung ROI of an image (auto, litemedsam, sam2, oracle) and write mask.png"


def add_backend_arguments(parser):
    parser.add_argument("--backend", default="auto", choices=["auto", "litemedsam", "sam2", "oracle"],
                        help="segmenter: auto = coarse U-Net prompts + LiteMedSAM (no clicks)")
    parser.add_argument("--sam2-checkpoint", default=None, metavar="PATH",
                        help="SAM 2.1 / MedSAM-2 checkpoint (.pt) for --backend sam2 (auto then refines with it)")
    parser.add_argument("--sam2-config", default=None, metavar="NAME",
                        help="SAM 2 config: hiera_t (default), sam2.1_hiera_s, configs/sam2/sam2_hiera_l.yaml or a YAML file")
    parser.add_argument("--litemedsam-adapter", default="default", metavar="PATH|none",
                        help="DRR read-out adapter for LiteMedSAM (default: models/roi_litemedsam_drr.pt if "
                             "present; 'none' = stock LiteMedSAM)")
    parser.add_argument("--coarse-model", default=None, metavar="PATH",
                        help="coarse lung model for auto (default: models/roi_coarse.pt)")
    parser.add_argument("--auto-fusion", default="mean", choices=["mean", "sam", "coarse"],
                        help="auto: merge refiner and coarse probabilities (mean), refined masks only (sam), "
                             "or coarse regions only (coarse: no LiteMedSAM call, fastest)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")


def segmenter_from_args(args, data_root=None):
    from ..roi.segmenters import get_segmenter

    extra = {"fusion": args.auto_fusion} if args.backend == "auto" else {}
    return get_segmenter(args.backend, sam2_checkpoint=args.sam2_checkpoint, sam2_config=args.sam2_config,
                         coarse_path=args.coarse_model, threads=args.threads, data_root=data_root,
                         litemedsam_adapter=args.litemedsam_adapter, **extra)


def add_arguments(parser):
    parser.add_argument("image", help="input image (PNG/JPEG/TIFF/DICOM)")
    add_backend_arguments(parser)
    parser.add_argument("--box", action="append", default=[], metavar="x0,y0,x1,y1",
                        help="box prompt in pixels (repeatable); auto uses it instead of self-prompting")
    parser.add_argument("--point", action="append", default=[], metavar="x,y",
                        help="positive point prompt in pixels (repeatable; sam2)")
    parser.add_argument("--out", default=None, metavar="MASK.png", help="output mask PNG (0/255)")
    parser.add_argument("--overlay", default=None, metavar="OVERLAY.png",
                        help="RGB overlay PNG (image with the ROI outlined); --out and/or --overlay")
    parser.add_argument("--grid", type=int, default=16, help="pixels per latent-grid cell for the side-info size")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")


def run(args):
    import json
    import time
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from ..data import read_image
    from ..roi.imageutil import overlay
    from ..roi.prompts import Prompt, parse_box, parse_point
    from ..roi.sideinfo import mask_bits, mask_to_grid

    from ..errors import InputError

    if not args.out and not args.overlay:
        raise InputError("nothing to write: give --out MASK.png and/or --overlay OVERLAY.png")
    image = read_image(args.image)
    prompt = None
    if args.box or args.point:
        prompt = Prompt(boxes=np.array([parse_box(b) for b in args.box], np.float32).reshape(-1, 4),
                        points=np.array([parse_point(p) for p in args.point], np.float32).reshape(-1, 2))
    seg = segmenter_from_args(args)
    t0 = time.perf_counter()
    if args.backend == "oracle":
        mask = seg.segment(image, prompt, source_path=args.image)
    else:
        mask = seg.segment(image, prompt)
    seconds = time.perf_counter() - t0
    out = Path(args.out) if args.out else None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask.astype(np.uint8) * 255).save(out)
    if args.overlay:
        Path(args.overlay).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(overlay(image, mask)).save(args.overlay)
    h, w = mask.shape
    grid = (max(1, -(-h // args.grid)), max(1, -(-w // args.grid)))
    info = dict(getattr(seg, "last_info", {}) or {})
    summary = {"image": args.image, "backend": args.backend, "mask": str(out) if out else None,
               "overlay": args.overlay, "roi_fraction": float(mask.mean()),
               "grid": list(grid), "side_info_bits": mask_bits(mask_to_grid(mask, grid)),
               "seconds": seconds, "source": info.get("source"), "fallback": info.get("fallback")}
    if args.json:
        print(json.dumps(summary))
    else:
        wrote = " and ".join(str(p) for p in (out, args.overlay) if p)
        print(f"wrote {wrote}: ROI {100 * mask.mean():.1f}% of the image, side info "
              f"{summary['side_info_bits']} bits on a {grid[0]}x{grid[1]} grid, {seconds:.2f} s"
              + (f" (fallback: {info['fallback']})" if info.get("fallback") else ""))
