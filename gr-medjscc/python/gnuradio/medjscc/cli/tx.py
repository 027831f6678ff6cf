"""``medjscc tx``: send X-ray images over a USRP (--hw) or ZMQ (--zmq) with the Med-JSCC link."""
COMMAND = "tx"
HELP = "transmit images over a USRP (--hw FILE) or ZMQ (--zmq ADDRESS); SNR feedback over ZMQ"
DESCRIPTION = (HELP + ". Without a USRP attached --hw stops with a one-line hardware error. "
               "Pair with 'medjscc rx' (same --config / codec / OFDM options).")


def add_arguments(parser):
    from ..config import LinkConfig

    parser.add_argument("images", nargs="+", help="image files (PNG/JPEG/TIFF/DICOM)")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--hw", metavar="FILE", help="USRP config YAML (hw_configs/*.yaml or b200/b210/n210/x310)")
    out.add_argument("--zmq", metavar="ADDRESS", nargs="?", const="tcp://127.0.0.1:5555",
                     help="send IQ over a ZMQ PUSH socket (default tcp://127.0.0.1:5555)")
    parser.add_argument("--snr-address", default="tcp://127.0.0.1:5556",
                        help="ZMQ SUB address of the receiver's SNR feedback ('' = none)")
    parser.add_argument("--mask", default="", help="ROI mask for the images (non-zero = ROI; the size of each image, else an error)")
    parser.add_argument("--repeat", type=int, default=1, help="send the images this many times")
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between images")
    parser.add_argument("--wait-feedback", action="store_true",
                        help="send the next image only after SNR feedback (stop-and-wait)")
    parser.add_argument("--feedback-timeout", type=float, default=10.0,
                        help="with --wait-feedback: seconds to wait for feedback before sending anyway")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    parser.add_argument("--feedback-policy", default="instant", choices=("instant", "margin", "predict", "floor", "fixed", "olla"),
                        help="how the CAU uses (late) SNR feedback: newest estimate, minus a margin, "
                             "linear prediction minus the margin, newest minus margin but never below the design SNR "
                             "(--snr-db), the fixed design SNR, or olla: newest minus margin minus a back-off "
                             "learned from the receiver's verdicts (outer loop; 'medjscc rx' publishes them with "
                             "its SNR feedback)")
    parser.add_argument("--feedback-margin-db", type=float, default=0.0, metavar="DB",
                        help="margin subtracted by --feedback-policy margin/predict/olla")
    parser.add_argument("--feedback-delay-ms", type=float, default=0.0, metavar="MS",
                        help="hold each SNR feedback message this long before the CAU uses it")
    parser.add_argument("--csi-mapping", action="store_true",
                        help="put the strong codec symbols on the subcarriers the receiver's feedback ranks "
                             "strongest (static multipath; needs --snr-address and a 'medjscc rx' feeding back)")
    parser.add_argument("--layered-until-feedback", action="store_true",
                        help="hybrid models: send the JPEG2000 base in two layers (the first at a more robust "
                             "MCS) while encoding for the design SNR --snr-db, i.e. until the receiver's first "
                             "SNR feedback: a guessed SNR that is too high then costs the finer layer, not the image")
    parser.add_argument("--layered-max-age", type=float, default=0.0, metavar="S",
                        help="with --layered-until-feedback: an SNR estimate older than S seconds counts as none "
                             "(the receiver went quiet), so images go with two layers again until fresh feedback "
                             "(0: never stale)")
    parser.add_argument("--max-retransmissions", type=int, default=0, metavar="N",
                        help="send again the frames a 'medjscc rx --retransmit-hold' names as lost in its verdicts "
                             "(on --snr-address), at most N times per image (0: off)")
    parser.add_argument("--random-weights", action="store_true",
                        help="use random codec weights when the model is missing (smoke tests only)")
    LinkConfig.add_arguments(parser, sections=("codec", "ofdm"))


def run(args):
    import json

    from ..blocks.link import run_tx
    from ..config import LinkConfig

    cfg = LinkConfig.from_args(args)
    hw = None
    if args.hw:
        from ..blocks.hw import load_hw_config

        hw = load_hw_config(args.hw)
    res = run_tx(args.images, cfg, hw=hw, iq_address=args.zmq, snr_address=args.snr_address or None,
                 repeat=args.repeat, interval_s=args.interval, wait_for_feedback=args.wait_feedback,
                 feedback_timeout_s=args.feedback_timeout,
                 timeout_s=args.timeout, allow_random=args.random_weights, mask_path=args.mask,
                 feedback_policy=args.feedback_policy, feedback_margin_db=args.feedback_margin_db,
                 feedback_delay_ms=args.feedback_delay_ms, csi_mapping=args.csi_mapping,
                 layered_until_feedback=args.layered_until_feedback,
                 layered_max_age_s=args.layered_max_age, max_retransmissions=args.max_retransmissions)
    print(json.dumps(res))
    if res["errors"]:
        from ..errors import InputError

        raise InputError(res["errors"][0])
    return 0 if res["completed"] else 3
