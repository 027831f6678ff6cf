"""``medjscc demo``: the main job, end to end.

DRR test images -> ROI mask -> Med-JSCC encoder -> GNU Radio OFDM loopback (or the
symbol-level channel with ``--link symbol``) at several SNRs -> decoded images, written to
``out/demo/``: montage.png, metrics.csv, metrics.json, and a table on stdout.
"""
COMMAND = "demo"
HELP = "run the end-to-end demo (DRR -> ROI -> Med-JSCC -> OFDM loopback) into out/demo"


def add_arguments(parser):
    parser.add_argument("--out", default="out/demo", help="output folder")
    parser.add_argument("--images", type=int, default=3, help="number of DRR test images")
    parser.add_argument("--snr", default="0,5,10,20", help="SNR list/range in dB (Es/N0)")
    parser.add_argument("--cbr", default="1/16", help="target total channel bandwidth ratio")
    parser.add_argument("--model", default="medjscc", help="codec name or weights path")
    parser.add_argument("--roi", default="auto", choices=["auto", "litemedsam", "oracle", "none"],
                        help="ROI backend for the transmitter's mask")
    parser.add_argument("--link", default="ofdm", choices=["ofdm", "symbol"],
                        help="ofdm: GNU Radio OFDM loopback flowgraph; symbol: symbol-level AWGN")
    parser.add_argument("--channel", default="awgn", choices=["awgn", "multipath", "rayleigh"],
                        help="simulated channel (Channel Preset of the same name)")
    parser.add_argument("--seed", type=int, default=0, help="channel noise/fading seed")


def run(args):
    from ..demo import run_demo

    return run_demo(args)
