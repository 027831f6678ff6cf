"""Required SNR of every MCS of the digital envelope's family (evaluation/linkadapt.py) on AWGN.

A frame is ``--symbols`` symbols (4096 = a 256x256 image at CBR 1/16) of random information bits,
rate-matched, QAM-mapped, sent through AWGN, soft-demapped (max-log) and min-sum decoded; it fails
if any of its codewords fails. The threshold is the SNR where the frame error rate crosses
``--fer`` (10%): SNRs are stepped by 0.5 dB from a guess (Shannon limit of the MCS's efficiency
plus a gap) until the FER crosses it, then interpolated in log(FER) between the two points around
the crossing. Frames at one SNR stop early once the outcome is clear.

    OMP_NUM_THREADS=1 .venv/bin/python bench/mcs_thresholds.py --json \\
        --out gr-medjscc/python/gnuradio/medjscc/evaluation/codes/mcs_thresholds.json \\
        --plot docs/figures/mcs_thresholds.png
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

STEP_DB = 0.5
GAP_GUESS_DB = {"bpsk": 1.5, "qpsk": 1.5, "16qam": 2.0, "64qam": 2.5, "256qam": 3.0}


def frame_errors(p, snr_db, max_frames, fer, seed, batch=10):
    """(failed, sent) at one SNR; stops once ``failed / max_frames > fer`` is certain."""
    from gnuradio.medjscc import snr as snr_mod
    from gnuradio.medjscc.evaluation import qam

    rng = np.random.default_rng([seed, int(round(snr_db * 1000)) & 0xFFFFFFFF])
    failed = sent = 0
    while sent < max_frames and failed <= fer * max_frames:
        n = min(batch, max_frames - sent)
        bits = rng.integers(0, 2, (n, p.info_bits)).astype(np.uint8)
        x = p.encode(bits)
        y = x + snr_mod.complex_awgn(x.shape, snr_db, rng)
        llr = qam.demodulate_llr(y.reshape(-1), p.mcs.modulation, snr_mod.noise_variance(snr_db))
        _, ok = p.decode(llr.reshape(n, -1), bits)
        failed += int((~ok).sum())
        sent += n
    return failed, sent


def threshold(mcs, n_sym, max_frames, fer, seed, max_steps=16):
    """-> dict(threshold_db, points=[[snr, fer, frames], ...])."""
    from gnuradio.medjscc.evaluation import linkadapt

    p = linkadapt.plan(mcs, n_sym)
    shannon = 10 * math.log10(2 ** mcs.efficiency - 1)
    s = round((shannon + GAP_GUESS_DB[mcs.modulation]) / STEP_DB) * STEP_DB
    pts = {}

    def run(snr):
        if snr not in pts:
            f, n = frame_errors(p, snr, max_frames, fer, seed)
            pts[snr] = (f / n, n)
        return pts[snr][0] <= fer

    first = run(s)
    direction = -STEP_DB if first else STEP_DB
    for _ in range(max_steps):
        nxt = round(s + direction, 3)
        if run(nxt) != first:
            break
        s = nxt
    else:
        return dict(threshold_db=None, points=sorted([k, v[0], v[1]] for k, v in pts.items()))
    lo, hi = sorted((s, nxt))   # lo fails, hi passes
    (f_lo, n_lo), (f_hi, n_hi) = pts[lo], pts[hi]
    a, b = math.log10(max(f_lo, 0.5 / n_lo)), math.log10(max(f_hi, 0.5 / n_hi))
    t = 0.0 if a == b else (a - math.log10(fer)) / (a - b)
    th = lo + min(1.0, max(0.0, t)) * (hi - lo)
    return dict(threshold_db=round(th, 3), shannon_db=round(shannon, 3),
                points=sorted([k, round(v[0], 4), v[1]] for k, v in pts.items()))


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gnuradio.medjscc.evaluation import linkadapt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    snr = np.linspace(-10, 28, 200)
    ax.plot(snr, np.log2(1 + 10 ** (snr / 10)), "k--", lw=1, label="AWGN capacity")
    for mod, marker in (("qpsk", "o"), ("16qam", "s"), ("64qam", "^"), ("256qam", "D")):
        xs = [v["threshold_db"] for n, v in result["mcs"].items()
              if linkadapt.parse(n).modulation == mod and v["threshold_db"] is not None]
        ys = [linkadapt.parse(n).efficiency for n, v in result["mcs"].items()
              if linkadapt.parse(n).modulation == mod and v["threshold_db"] is not None]
        ax.plot(xs, ys, marker, label=f"{mod} (rate-matched 802.11n LDPC n=1944)")
    ax.set_xlabel(f"SNR (dB) for {result['target_fer']:.0%} frame errors, {result['frame_symbols']} symbols, AWGN")
    ax.set_ylabel("information bits / symbol")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=4096, help="symbols per frame (4096: 256x256 at CBR 1/16)")
    ap.add_argument("--frames", type=int, default=40, help="frames per SNR at most")
    ap.add_argument("--fer", type=float, default=0.1, help="target frame error rate")
    ap.add_argument("--mcs", default=None, help="comma-separated MCS names (default: the whole family)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="write the thresholds JSON here")
    ap.add_argument("--plot", default=None, help="write the threshold plot (PNG) here")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)

    from gnuradio.medjscc.evaluation import linkadapt

    family = [linkadapt.parse(n) for n in args.mcs.split(",")] if args.mcs else list(linkadapt.FAMILY)
    t0 = time.time()
    result = {"bench": "mcs_thresholds", "channel": "awgn", "frame_symbols": args.symbols,
              "target_fer": args.fer, "max_frames": args.frames, "step_db": STEP_DB, "seed": args.seed,
              "command": "bench/mcs_thresholds.py " + " ".join(a for a in (argv if argv is not None else sys.argv[1:])),
              "mcs": {}}
    for m in family:
        t = time.time()
        r = threshold(m, args.symbols, args.frames, args.fer, args.seed)
        r.update(efficiency=round(m.efficiency, 4), modulation=m.modulation, rate=m.rate, mother=linkadapt.plan(m, args.symbols).code.name,
                 seconds=round(time.time() - t, 1))
        result["mcs"][m.name] = r
        if not args.json:
            print(f"{m.name:14s} {r['threshold_db']} dB  ({r['seconds']} s)", file=sys.stderr)
    ths = [v["threshold_db"] for v in result["mcs"].values() if v["threshold_db"] is not None]
    steps = np.diff(sorted(ths))
    result["summary"] = {"lowest_db": min(ths) if ths else None, "highest_db": max(ths) if ths else None,
                         "largest_step_db": round(float(steps.max()), 3) if steps.size else None,
                         "seconds": round(time.time() - t0, 1)}
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:
        plot(result, args.plot)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
