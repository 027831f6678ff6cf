"""``medjscc rx``: receive Med-JSCC images from a USRP (--hw), ZMQ (--zmq) or a SigMF replay."""
import argparse

COMMAND = "rx"
HELP = "receive images from a USRP (--hw FILE), ZMQ (--zmq) or a SigMF recording (--replay)"
DESCRIPTION = (HELP + ". --record DIR saves the received IQ as SigMF (sample rate, centre frequency, "
               "hw config and frame annotations). Prints one JSON line per decoded image.")


def add_arguments(parser):
    from ..config import LinkConfig

    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--hw", metavar="FILE", help="USRP config YAML (hw_configs/*.yaml or b200/b210/n210/x310)")
    src.add_argument("--zmq", metavar="ADDRESS", nargs="?", const="tcp://127.0.0.1:5555",
                     help="receive IQ from a ZMQ PUSH socket (default tcp://127.0.0.1:5555)")
    src.add_argument("--replay", metavar="FILE.sigmf-meta", help="run the receiver on a SigMF recording")
    parser.add_argument("--record", metavar="DIR", help="write the received IQ as a SigMF recording")
    parser.add_argument("--out", default="", metavar="DIR", help="folder for decoded images (PNG, DICOM for DICOM references; default: none)")
    parser.add_argument("--keep-identifiers", action="store_true",
                        help="copy the patient/study identity of a DICOM --reference into the output "
                             "DICOMs (default: de-identified, DICOM PS3.15 Basic Profile)")
    parser.add_argument("--record-hw-identity", action="store_true",
                        help="with --record and --hw: keep the radio's serial/address (device args) "
                             "in the SigMF metadata (default: left out)")
    parser.add_argument("--reference", default="", metavar="FILE", help="original image, for PSNR (default: none)")
    parser.add_argument("--reference-mask", default="", metavar="FILE",
                        help="ROI mask of the original (non-zero = ROI, the size of --reference), for ROI-PSNR (default: none)")
    parser.add_argument("--images", type=int, default=0, metavar="N", help="stop after this many images (0 = no limit)")
    parser.add_argument("--duration", type=float, default=60.0, metavar="SECONDS", help="stop after this many seconds")
    parser.add_argument("--idle-timeout", type=float, default=5.0, metavar="SECONDS",
                        help="stop when no frame arrived for this long (after the first one)")
    parser.add_argument("--max-pending", type=int, default=32, metavar="N",
                        help="images that may wait for the decoder; beyond that the oldest is reported "
                             "with status 'dropped' (0 = no bound)")
    parser.add_argument("--stop-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="at stop, decode waiting images for at most this long; the rest are "
                             "reported 'dropped'")
    presets = _channel_presets()
    parser.add_argument("--sim-channel", default=None, choices=presets, metavar="PRESET",
                        help="apply a simulated channel (Channel Preset block) to the input, at --channel-snr-db "
                             "and --channel-cfo (ZMQ/replay tests); one of " + ", ".join(presets))
    # the channel section's "kind" is the symbol-level model of eval/sweep, not what rx applies:
    # rx has one name for its channel, --sim-channel; --channel-kind stays as a deprecated alias
    parser.add_argument("--channel-kind", dest="sim_channel", choices=presets, action=_DeprecatedAlias,
                        help=argparse.SUPPRESS)
    parser.add_argument("--snr-address", default="tcp://127.0.0.1:5556", metavar="ADDRESS",
                        help="ZMQ PUB address for SNR feedback to the transmitter ('' = none)")
    parser.add_argument("--feedback-delay-ms", type=float, default=0.0, metavar="MS",
                        help="publish the SNR feedback this late (a satellite round trip: ~30 LEO, ~550 GEO)")
    parser.add_argument("--retransmit-hold", type=float, default=0.0, metavar="SECONDS",
                        help="keep an image whose frames did not all come this long, name the lost frames in the "
                             "verdicts on --snr-address, and decode it again when a 'medjscc tx "
                             "--max-retransmissions' sends them (0: off)")
    parser.add_argument("--no-carrier-ranking", action="store_true",
                        help="feed back the SNR only, no carrier ranking (a 'medjscc tx --csi-mapping' "
                             "then keeps the fixed interleaver)")
    parser.add_argument("--random-weights", action="store_true",
                        help="use random codec weights when the model is missing (smoke tests only)")
    LinkConfig.add_arguments(parser, sections=("codec", "ofdm", "channel"),
                             exclude=("channel.kind", "channel.erasure_prob"))


def _channel_presets():
    """Channel Preset names without importing GNU Radio (keeps --help instant)."""
    from ..blocks.radio_profiles import radio_profile_names

    return ["awgn", "multipath", "rayleigh", "rayleigh_fast", *radio_profile_names()]


class _DeprecatedAlias(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        import sys

        print(f"medjscc rx: {option_string} is deprecated, use --sim-channel", file=sys.stderr)
        setattr(namespace, self.dest, values)


def run(args):
    import json
    import math

    from ..blocks.link import run_rx
    from ..config import LinkConfig

    cfg = LinkConfig.from_args(args)
    hw = None
    if args.hw:
        from ..blocks.hw import load_hw_config

        hw = load_hw_config(args.hw)

    def show(r):
        row = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
               for k, v in r.items() if k != "image"}
        print(json.dumps(row), flush=True)

    res = run_rx(cfg, hw=hw, iq_address=args.zmq, replay=args.replay,
                 snr_address=(args.snr_address or None) if not args.replay else None,
                 record_dir=args.record, out_dir=args.out, reference=args.reference,
                 reference_mask=args.reference_mask, n_images=args.images, duration_s=args.duration,
                 idle_timeout_s=args.idle_timeout, channel=args.sim_channel,
                 allow_random=args.random_weights, on_result=show,
                 keep_identifiers=args.keep_identifiers, record_hw_identity=args.record_hw_identity,
                 max_pending_images=args.max_pending, stop_timeout_s=args.stop_timeout,
                 feedback_delay_ms=args.feedback_delay_ms, carrier_ranking=not args.no_carrier_ranking,
                 retransmit_hold_s=args.retransmit_hold)
    print(json.dumps({"summary": {k: v for k, v in res.items() if k != "results"},
                      "images": len(res["results"])}), flush=True)
    return 0
