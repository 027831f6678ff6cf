"""``medjscc sweep``: compare Med-JSCC with neural ablations and digital baselines over SNR/CBR."""
COMMAND = "sweep"
HELP = "sweep methods over SNR and CBR on the test images (results.csv, summary.json, plots)"
DESCRIPTION = (
    "Send the test images through each method at every SNR and CBR and write a tidy results.csv, "
    "summary.json and plots to --out. Methods: medjscc, medjscc_csi, medjscc_radio, medjscc_task, "
    "ntscc, adjscc, deepjscc (neural, need weights; '<model>-rep' repeats 20 of every 100 strong "
    "symbols), digital-envelope (the fair digital reference: one MCS per SNR by a rule fitted on "
    "validation images), hybrid-softcast (digital JPEG2000 base + linear analog residual), "
    "medjscc-hda (the same frames with the learned refinement decoder), hybrid-softcast-nomask "
    "(the hybrid without any use of the ROI mask, symbol link: what the mask buys), hybrid-softcast-task "
    "(the hybrid's analog error weighted towards where the nodule observer looks, symbol link: "
    "nodule AUC for PSNR), hybrid-layered (the hybrid's base in two JPEG2000 layers, the first at a "
    "more robust MCS: survives an over-estimated SNR), j2k-ldpc, hevc-ldpc, "
    "j2k-roi-ldpc (digital oracles: every LDPC x QAM MCS, the best is reported), j2k-capacity, "
    "hevc-capacity (ideal-code bounds). Every row reports cbr_total (the "
    "method's own symbols per pixel, side info included) and, with --link ofdm, cbr_air (every sample "
    "on air per pixel: preambles, headers, pilots, cyclic prefix, padding). --budget air compares "
    "methods at equal cbr_air instead of equal codec CBR. Re-running with the same --out skips "
    "finished points."
)


def add_arguments(parser):
    parser.add_argument("--methods", default="medjscc,j2k-ldpc,j2k-capacity",
                        help="comma-separated list of methods")
    parser.add_argument("--snr", default="0:20:5",
                        help="SNR list/range in dB, e.g. 0,5,10 or 0:20:5; write --snr=-5:25:5 when it starts negative")
    parser.add_argument("--cbr", default="1/16",
                        help="CBR list, e.g. 1/64,1/32,1/16: each method's codec CBR, or with --budget air its "
                             "samples on air per pixel")
    parser.add_argument("--budget", default="codec", choices=["codec", "air"],
                        help="what --cbr fixes: 'codec' (default) = every method's own CBR (symbols + side info); "
                             "'air' (--link ofdm only) = samples on air per pixel, each method getting the largest "
                             "codec CBR whose bursts fit it on the same OFDM framing")
    parser.add_argument("--channel", default="awgn", help="awgn | rayleigh (= rayleigh_iid, i.i.d. per symbol) | multipath | rayleigh_block256 | "
                             "rayleigh_block1536 | rayleigh_frame (see channel_models)")
    parser.add_argument("--link", default="symbol", help="symbol (per-symbol channel) | ofdm (numpy OFDM PHY)")
    parser.add_argument("--trials", type=int, default=1, help="channel realisations per image")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--out", default="results", help="output folder")
    parser.add_argument("--backend", default="local", help="local (process pool) | ray")
    parser.add_argument("--address", default=None, help="Ray cluster address to join (HOST:PORT)")
    parser.add_argument("--workers", type=int, default=None, help="parallel workers (default: CPU count)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the channel draws")
    parser.add_argument("--data", default=None,
                        help="image folder (images/ + masks/) or data-set root with <split>/ (default: DRR set)")
    parser.add_argument("--split", default="test", help="split of the data set root")
    parser.add_argument("--no-plots", action="store_true", help="skip the figures")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per (method, snr_db, cbr, channel, link) aggregate")
    parser.add_argument("--task", default=None, choices=["nodule"],
                        help="add a diagnostic task: 'nodule' = detection AUC of a channelized Hotelling "
                             "observer for simulated lung nodules (task_auc, task_auc_lo/hi, task_dprime)")
    parser.add_argument("--task-pairs", type=int, default=80,
                        help="signal-present/-absent nodule pairs of the test split used by --task (default 80)")
    sc = parser.add_argument_group(
        "scenario (issue #18)", "--scenario PROFILE sends --images images over one pass of a satellite profile "
        "(leo_pass, geo_link) with late SNR feedback instead of the SNR x CBR grid: Med-JSCC and the digital "
        "envelope are told the same fed-back SNR (evaluation/scenario.py); one --snr (the pass average) and one "
        "--cbr; writes scenario.csv, scenario_summary.json, plots/scenario_<profile>.png")
    sc.add_argument("--scenario", default=None, help="satellite radio profile, e.g. leo_pass")
    sc.add_argument("--images", type=int, default=24, help="images sent over the pass (default 24)")
    sc.add_argument("--feedback-delay-ms", type=float, default=30.0, help="SNR feedback delay, air time (default 30)")
    sc.add_argument("--feedback-policy", default="floor",
                    help="comma-separated CAU policies: instant, margin, predict, floor, fixed (default floor)")
    sc.add_argument("--feedback-margin-db", type=float, default=0.0, help="margin of the margin/predict/floor policies")
    sc.add_argument("--design-snr", type=float, default=None, help="policies' design SNR (default: --snr)")
    sc.add_argument("--image-interval-ms", type=float, default=20.0,
                    help="air time per image; the pass is compressed so the images span it (default 20)")


def run(args):
    import math

    from ..errors import InputError
    from ..evaluation.sweep import SweepSpec, json_line, run_sweep
    from ..snr import parse_spec

    def spec_list(text, flag):
        try:
            return parse_spec(text)
        except ValueError as e:
            raise InputError(f"{flag} {text!r}: {e}") from None

    methods = [m.strip() for m in str(args.methods).split(",") if m.strip()]
    if getattr(args, "scenario", None):
        return _run_scenario(args, methods, spec_list)
    spec = SweepSpec(methods=methods, snrs=spec_list(args.snr, "--snr"), cbrs=spec_list(args.cbr, "--cbr"),
                     channel=args.channel, link=args.link, trials=args.trials, limit=args.limit,
                     seed=args.seed, data=args.data, split=args.split,
                     task=getattr(args, "task", None), task_pairs=getattr(args, "task_pairs", 80),
                     budget=getattr(args, "budget", "codec"))
    result = run_sweep(spec, args.out, backend=args.backend, address=args.address, workers=args.workers,
                       progress=True, plots=not args.no_plots)
    if args.json:
        for p in result.points:
            print(json_line(p), flush=True)
    else:
        print(f"{result.n_tasks_run} points run ({result.n_rows_new} rows) in {result.seconds:.1f} s; "
              f"results in {result.out}/results.csv, summary.json, plots/")
        for p in result.points:
            extra = f" mcs={p['mcs']}" if p.get("mcs") else ""
            if "task_auc" in p:
                extra += f" auc={p['task_auc']:.3f} [{p['task_auc_lo']:.3f}, {p['task_auc_hi']:.3f}]"
            if p.get("dice_vs_original") is not None:
                extra += f" dice={p['dice_vs_original']:.3f}"
            air = f" cbr_air={p['cbr_air']:.4f}" if math.isfinite(p.get("cbr_air", math.nan)) else ""
            print(f"  {p['method']:14s} snr={p['snr_db']:5.1f} cbr={p['cbr']:.4f} cbr_total={p['cbr_total']:.4f}{air} "
                  f"psnr={p['psnr']:6.2f} roi={p['roi_psnr']:6.2f} ms-ssim={p['ms_ssim']:.4f} "
                  f"ok={p['decode_rate']:.2f} n={p['n']}{extra}")
        if result.task:
            ref = result.task["reference"]
            print(f"  nodule task: original images AUC {ref['task_auc']:.3f} [{ref['task_auc_lo']:.3f}, "
                  f"{ref['task_auc_hi']:.3f}] over {ref['task_n_pairs']} pairs")
    return 0


def _run_scenario(args, methods, spec_list):
    """--scenario: images over one satellite pass with late SNR feedback (evaluation/scenario.py)."""
    from ..errors import InputError
    from ..evaluation.scenario import ScenarioSpec, json_line, run_scenario

    snrs, cbrs = spec_list(args.snr, "--snr"), spec_list(args.cbr, "--cbr")
    if len(snrs) != 1 or len(cbrs) != 1:
        raise InputError("--scenario needs one --snr (the pass-average SNR, e.g. --snr 10) and one --cbr")
    if args.methods == "medjscc,j2k-ldpc,j2k-capacity":   # the grid's default: the scenario's pair instead
        methods = ["medjscc", "digital-envelope"]
    spec = ScenarioSpec(scenario=args.scenario, methods=methods,
                        policies=[p.strip() for p in str(args.feedback_policy).split(",") if p.strip()],
                        images=args.images, snr_db=snrs[0], design_snr_db=args.design_snr,
                        delay_ms=args.feedback_delay_ms, margin_db=args.feedback_margin_db,
                        image_interval_ms=args.image_interval_ms, cbr=cbrs[0], seed=args.seed,
                        data=args.data, split=args.split)
    result = run_scenario(spec, args.out, plots=not args.no_plots, progress=not args.json)
    if args.json:
        for r in result.rows:
            print(json_line(r), flush=True)
        for s in result.summary:
            print(json_line(dict(s, kind="summary", scenario=spec.scenario)), flush=True)
        return 0
    print(f"{spec.images} images x {len(spec.policies)} policies x {len(spec.methods)} methods in {result.seconds:.1f} s (pass {result.settings['period_s']:.0f} s, "
          f"x{result.settings['time_scale']:.0f}); results in {result.out}/scenario.csv, scenario_summary.json, plots/")
    for s in result.summary:
        print(f"  {s['policy']:8s} {s['method']:17s} delay={s['delay_ms']:g} ms roi={s['roi_psnr']:6.2f} "
              f"min={s['roi_psnr_min']:6.2f} lost={s['images_lost']}/{s['n']} cau_err={s['cau_err_db']:+.2f} dB")
    return 0
