#!/usr/bin/env python3
"""What an image costs on air with different OFDM layouts, and what each layout gives up.

    python bench/air_budget.py --json [--images 6] [--snr=-2,0] [--frames 60] [--loss 0.1]
    python bench/air_budget.py --json --payload [--payload-snr 10,20] [--payload-frames 30]

For every layout (``LAYOUTS``: the default, variants with longer frames, larger side-info chunks,
a shorter cyclic prefix, 52 + 4 carriers, a shorter preamble or a 128-point FFT) the test DRRs are
encoded by the shipped Med-JSCC at CBR 1/16 and framed with ``phy.framing``; the record counts
every complex sample on air per pixel (``cbr_air``: preambles, headers, pilots, cyclic prefix,
padding) against the codec's ``cbr_total``. Layouts marked ``frames_per_image`` are sized on the
encoded images: ``symbols_per_frame`` so the largest image takes that many frames, and the
side-info chunk so the largest side info (+ its CRC) rides whole in every header (``whole``:
``side_info_parity`` = frames - 1) or is split over frames - parity headers (``split``).
Robustness, with the same noise draws for every layout:

* ``lost_frames_survived``: the fewest lost frames an image's side info survives (erasure code);
* ``side_lost_p``: closed form, the chance that an image loses its side info (= the image) when
  every frame is lost independently with probability ``--loss``: P(Binomial(frames, loss) >
  frames - chunks needed), averaged over the images; ``images_lost_per_60`` = 60 times that,
  ``all_60_ok_p`` the chance that 60 such images all keep it;
* ``header_ok``: the share of frame headers decoded (CRC) at each ``--snr`` in AWGN (numpy PHY).

``--payload`` adds, for ``--payload-layouts``, one line per (layout, channel, SNR) with the share
of frames decoded and the effective SNR of the equalised payload (10 log10 1/MSE, x known) in AWGN,
the ``multipath_3tap`` radio profile (static taps at 0 / 3 / 8 samples: ISI once the delay spread
exceeds the cyclic prefix minus the timing backoff) and ``rayleigh_100hz`` (flat Jakes fading,
fD*Ts = 1e-4) on the numpy PHY.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from phy_common import emit  # noqa: E402

LEAN = {"n_data_carriers": 52, "n_pilot_carriers": 4, "n_short_reps": 6, "n_long": 2}
FFT128 = {"fft_len": 128, "n_data_carriers": 112, "n_pilot_carriers": 8, "n_short_reps": 6, "n_long": 2}
LAYOUTS = {
    "default": {},
    "side-info chunk 16": {"header_side_info_bytes": 16},
    "side-info chunk 14, parity 2": {"header_side_info_bytes": 14, "side_info_parity": 2},
    "side-info chunk 14 (the default before whole side info)": {"header_side_info_bytes": 14},
    "2 frames, side info whole in each": {"symbols_per_frame": 44, "header_side_info_bytes": 28},
    "1 frame per image": {"frames_per_image": 1, "side_info": "whole"},
    "cp 8": {"cp_len": 8},
    "cp 12": {"cp_len": 12},
    "fft 128, 2 frames": {"fft_len": 128, "cp_len": 16, "n_data_carriers": 96, "n_pilot_carriers": 8,
                          "symbols_per_frame": 22, "n_long": 2, "n_short_reps": 6,
                          "header_side_info_bytes": 28},
    "fft 128, 1 frame": {"fft_len": 128, "cp_len": 16, "n_data_carriers": 96, "n_pilot_carriers": 8,
                         "symbols_per_frame": 44, "n_long": 2, "n_short_reps": 6,
                         "header_side_info_bytes": 28, "side_info_parity": 0},
    **{f"52+4, cp {cp}, pre 6/2, {name}": {**LEAN, "cp_len": cp, **kw}
       for cp in (12, 8)
       for name, kw in (("1 frame", {"frames_per_image": 1, "side_info": "whole"}),
                        ("2 frames, whole side info x2", {"frames_per_image": 2, "side_info": "whole"}),
                        ("2 frames, split, parity 0", {"frames_per_image": 2, "side_info": "split",
                                                       "side_info_parity": 0}),
                        ("3 frames, split, parity 1", {"frames_per_image": 3, "side_info": "split"}),
                        ("3 frames, whole side info x3", {"frames_per_image": 3, "side_info": "whole"}))},
    # the RX takes its window timing_backoff (default cp/4) samples early and estimates cp_len
    # channel taps, so a channel of L taps (multipath_3tap: 9) needs cp_len >= backoff + L
    "52+4, cp 8, backoff 0, pre 6/2, 1 frame": {**LEAN, "cp_len": 8, "timing_backoff": 0, "frames_per_image": 1,
                                                "side_info": "whole"},
    "52+4, cp 10, pre 6/2, 1 frame": {**LEAN, "cp_len": 10, "frames_per_image": 1, "side_info": "whole"},
    "52+4, cp 10, backoff 1, pre 6/2, 1 frame": {**LEAN, "cp_len": 10, "timing_backoff": 1, "frames_per_image": 1,
                                                 "side_info": "whole"},
    **{f"fft 128, 112+8, cp {cp}, pre 6/2, {name}": {**FFT128, "cp_len": cp, "frames_per_image": f,
                                                     "side_info": "whole"}
       for cp in (12, 8)
       for name, f in (("1 frame", 1), ("2 frames, whole side info x2", 2), ("3 frames, whole side info x3", 3))},
    # the dense header code (QPSK rate 1/2: a third of the header symbols, needs ~4 dB; what
    # header_mcs=auto sends from dense_header_snr_db up)
    "dense header": {"header_mcs": "dense"},
    "dense header, 2 frames, whole side info x2": {"header_mcs": "dense", "frames_per_image": 2, "side_info": "whole"},
    **{f"dense header, 52+4, cp 12, pre 6/{n_long}, {name}": {**LEAN, "n_long": n_long, "cp_len": 12, "header_mcs": "dense",
                                                           "frames_per_image": f, "side_info": "whole"}
       for n_long in (4, 2)
       for name, f in (("1 frame", 1), ("2 frames, whole side info x2", 2), ("3 frames, whole side info x3", 3))},
}
PAYLOAD_LAYOUTS = ("default", "52+4, cp 12, pre 6/2, 1 frame", "52+4, cp 10, pre 6/2, 1 frame",
                   "52+4, cp 10, backoff 1, pre 6/2, 1 frame", "52+4, cp 8, pre 6/2, 1 frame",
                   "52+4, cp 8, backoff 0, pre 6/2, 1 frame",
                   "fft 128, 112+8, cp 12, pre 6/2, 1 frame", "fft 128, 112+8, cp 8, pre 6/2, 1 frame",
                   "fft 128, 112+8, cp 12, pre 6/2, 2 frames, whole side info x2")
PAYLOAD_CHANNELS = ("awgn", "multipath_3tap", "rayleigh_100hz")
COLUMNS = ["layout", "frames", "header_symbols", "cbr_total", "cbr_air", "air_over_total", "lost_frames_survived",
           "side_lost_p", "images_lost_per_60", "all_60_ok_p", "header_ok"]
PAYLOAD_COLUMNS = ["layout", "channel", "snr_db", "frames_ok", "effective_snr_db"]


def resolve_layout(kw: dict, n_symbols: int, side_info_bytes: int) -> dict:
    """``LAYOUTS`` entry -> ``OfdmParams`` keywords, sizing ``frames_per_image`` layouts on the
    largest image (``n_symbols`` codec symbols, ``side_info_bytes`` of side info)."""
    from gnuradio.medjscc.errors import MedJSCCError
    from gnuradio.medjscc.phy.framing import SIDE_CRC_BYTES

    kw = dict(kw)
    frames, side = kw.pop("frames_per_image", None), kw.pop("side_info", None)
    if frames is None:
        return kw
    n_data = kw.get("n_data_carriers", 48)
    kw["symbols_per_frame"] = math.ceil(n_symbols / (frames * n_data))
    blob = side_info_bytes + SIDE_CRC_BYTES
    if side == "whole":            # every header holds the whole side info: any one frame rebuilds it
        kw["header_side_info_bytes"], kw["side_info_parity"] = blob, frames - 1
    elif side == "split":          # frames - parity headers hold it between them
        parity = kw.setdefault("side_info_parity", 1)
        if not 0 <= parity < frames:
            raise MedJSCCError(f"split side info needs 0 <= side_info_parity < frames_per_image, got {parity}")
        kw["header_side_info_bytes"] = math.ceil(blob / (frames - parity))
    else:
        raise MedJSCCError(f"side_info must be 'whole' or 'split', got {side!r}")
    return kw


def side_lost_probability(frames: int, chunks: int, loss: float) -> float:
    """P(an image's side info is lost) when each of its ``frames`` is lost independently with
    probability ``loss`` and any ``chunks`` received frames rebuild it (no side info: all frames lost)."""
    need = max(chunks, 1)
    return sum(math.comb(frames, j) * loss ** j * (1 - loss) ** (frames - j)
               for j in range(frames - need + 1, frames + 1))


def header_ok_rate(params, snr_db: float, n_frames: int, seed: int) -> float:
    """Share of frames whose header passes its CRC (AWGN, numpy PHY, one frame per burst)."""
    import numpy as np

    from gnuradio.medjscc.phy import FrameHeader, OfdmReceiver, OfdmTransmitter, apply_iq_channel

    rng = np.random.default_rng(seed)
    tx, ok = OfdmTransmitter(params), 0
    for k in range(n_frames):
        n = params.max_payload_len
        x = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2)).astype(np.complex64)
        hdr = FrameHeader(k % 255, 1, 255, n, bytes(rng.integers(0, 256, params.header_side_info_bytes,
                                                                  dtype=np.uint8)), 20)
        y = apply_iq_channel(tx.modulate(hdr, x), "awgn", snr_db, delay=int(rng.integers(100, 400)), tail=300,
                             rng=rng, params=params)
        rx = OfdmReceiver(params)
        ok += sum(f.crc_ok and f.header == hdr for f in list(rx.process(y)) + list(rx.flush()))
    return ok / n_frames


def payload_check(params, channel: str, snr_db: float, n_frames: int, seed: int) -> dict:
    """Frames decoded and effective payload SNR of full frames through ``channel`` (numpy PHY)."""
    import numpy as np

    from gnuradio.medjscc.blocks.radio_profiles import get_radio_profile
    from gnuradio.medjscc.phy import FrameHeader, OfdmReceiver, OfdmTransmitter, apply_iq_channel

    kw: dict = {}
    if channel == "multipath_3tap":
        taps = get_radio_profile(channel).taps
        h = np.zeros(max(t.delay for t in taps) + 1, complex)
        for t in taps:
            h[t.delay] = 10 ** (t.gain_db / 20) * np.exp(1j * math.radians(t.phase_deg))
        kw = {"preset": "multipath", "taps": h}     # apply_iq_channel normalises them to unit energy
    elif channel == "rayleigh_100hz":
        kw = {"preset": "rayleigh", "fading": "fast", "doppler": get_radio_profile(channel).fdts}
    elif channel == "awgn":
        kw = {"preset": "awgn"}
    else:
        raise ValueError(f"payload channel must be one of {PAYLOAD_CHANNELS}, got {channel!r}")
    rng = np.random.default_rng(seed)
    tx, ok, err = OfdmTransmitter(params), 0, []
    for k in range(n_frames):
        n = params.max_payload_len
        x = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2)).astype(np.complex64)
        hdr = FrameHeader(k % 255, 1, 255, n, bytes(params.header_side_info_bytes), 20)
        y = apply_iq_channel(tx.modulate(hdr, x), snr_db=snr_db, delay=int(rng.integers(100, 400)), tail=300,
                             rng=rng, params=params, **kw)
        rx = OfdmReceiver(params)
        for f in list(rx.process(y)) + list(rx.flush()):
            if f.crc_ok and f.header == hdr and f.payload.size == n:
                ok += 1
                err.append(float(np.mean(np.abs(f.payload - x) ** 2)))
    return {"frames_ok": ok / n_frames,
            "effective_snr_db": 10 * math.log10(1 / float(np.mean(err))) if err else float("nan")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6, help="test-split DRR images to encode")
    ap.add_argument("--snr", default="-2,0", help="SNRs (dB) of the header robustness check")
    ap.add_argument("--frames", type=int, default=60, help="frames per SNR in the header check")
    ap.add_argument("--loss", type=float, default=0.1, help="i.i.d. frame-loss probability of side_lost_p")
    ap.add_argument("--payload", action="store_true", help="also the payload check on multipath / fading")
    ap.add_argument("--payload-layouts", default="|".join(PAYLOAD_LAYOUTS), help="'|'-separated LAYOUTS names")
    ap.add_argument("--payload-snr", default="10,20", help="SNRs (dB) of the payload check")
    ap.add_argument("--payload-frames", type=int, default=30, help="frames per (layout, channel, SNR)")
    ap.add_argument("--repeat-strong", type=float, default=None,
                    help="share of the strongest codec symbols sent twice (default: codec.repeat_strong, as jscc_tx)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)
    if not 0 <= args.loss < 1:
        ap.error(f"--loss must be in [0, 1), got {args.loss}")
    payload_layouts = [n.strip() for n in args.payload_layouts.split("|") if n.strip()] if args.payload else []
    unknown = [n for n in payload_layouts if n not in LAYOUTS]
    if unknown:
        ap.error(f"unknown --payload-layouts {unknown}; choose from {list(LAYOUTS)}")
    os.environ.setdefault("OMP_NUM_THREADS", "2")

    import numpy as np

    from gnuradio.medjscc import demo
    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.phy import OfdmParams, frame_image, overhead_symbols
    from gnuradio.medjscc.phy.framing import frame_plan
    from gnuradio.medjscc.snr import parse_spec

    snrs = parse_spec(args.snr)
    from gnuradio.medjscc.config import CodecConfig

    codec = load_codec("medjscc")
    repeat = CodecConfig.repeat_strong if args.repeat_strong is None else args.repeat_strong
    images, masks, _ = demo._load_images(args.images, 0)
    encoded = [codec.encode(img, m, snr_db=10.0, cbr=1 / 16, repeat_strong=repeat) for img, m in zip(images, masks)]
    n_max = max(e.symbols.size for e in encoded)
    side_max = max(len(e.side_info) for e in encoded)
    resolved = {}
    for name, spec in LAYOUTS.items():
        kw = resolve_layout(spec, n_max, side_max)
        p = resolved[name] = OfdmParams(**kw).validate()
        air, frames, survived, lost = [], [], [], []
        for img, enc in zip(images, encoded):
            ov = overhead_symbols(enc.symbols.size, len(enc.side_info), p)
            assert ov["frames"] == len(frame_image(0, enc.symbols, enc.side_info, p))
            plan = frame_plan(enc.symbols.size, len(enc.side_info), p)
            air.append(ov["total"] / img.size)
            frames.append(ov["frames"])
            survived.append(plan.frames - max(plan.side_chunks, 1) if enc.side_info else plan.frames - 1)
            lost.append(side_lost_probability(plan.frames, plan.side_chunks, args.loss))
        cbr_total = float(np.mean([e.cbr_total for e in encoded]))
        side_lost = float(np.mean(lost))
        rec = {"layout": name, "repeat_strong": repeat, "params": kw, "frames": float(np.mean(frames)), "header_symbols": p.n_header_symbols,
               "cbr_total": cbr_total, "cbr_air": float(np.mean(air)),
               "air_over_total": float(np.mean(air)) / cbr_total, "lost_frames_survived": int(min(survived)),
               "frame_loss": args.loss, "side_lost_p": side_lost, "images_lost_per_60": 60 * side_lost,
               # P(no image of 60 lost), images drawn like these (geometric mean of the survivals)
               "all_60_ok_p": math.exp(60 * float(np.mean(np.log1p(-np.minimum(lost, 1 - 1e-15))))),
               "header_ok": {f"{s:g}": header_ok_rate(p, s, args.frames, 17) for s in snrs}}
        emit(rec, args.json, COLUMNS)
    for name in payload_layouts:
        for channel in PAYLOAD_CHANNELS:
            for snr in parse_spec(args.payload_snr):
                rec = {"check": "payload", "layout": name, "channel": channel, "snr_db": snr,
                       "n_frames": args.payload_frames, **payload_check(resolved[name], channel, snr,
                                                                       args.payload_frames, 23)}
                emit(rec, args.json, PAYLOAD_COLUMNS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
