#!/usr/bin/env python3
"""Late SNR feedback over a satellite pass: the CAU policies against instant and no feedback.

    python bench/late_feedback.py --json [--profile leo_pass] [--snr 10] [--images 40]
        [--delays 30] [--policies instant,margin,predict] [--margin-db 1] [--time-scale pass]
        [--design-snr 10] [--seed 0]

The full GNU Radio link of the closed loop: jscc_tx (CAU: --policy, feedback_delay_ms) ->
ofdm_analog_tx -> channel_preset(<profile>) -> ofdm_analog_rx -> jscc_rx, and ofdm_analog_rx ->
snr_feedback -> jscc_tx. Test-split DRRs with their lung masks (oracle ROI), shipped model, CBR 1/16.

Time is *air time*: each image has a fixed air slot (the longest image at the design SNR plus one
frame; zeros fill the rest), so every policy's image k meets the same fading and noise samples
(an encoding SNR changes the frame count now and then). The bench sends image j+1 once every frame of
image j came out of the receiver (the channel only advances with the samples, so this is a
continuous transmission, not a paced one), and the CAU's clock is the TX sample count / fs. An
SNR estimate is measured at its frame's air time and usable ``delay`` ms of air time after the
frame was received; with the ~19 ms slots of 256x256 DRRs at CBR 1/16 a 30 ms delay means the
CAU encodes from estimates 1-2 images old. ``--time-scale pass`` (default) runs the profile's slow dynamics
so that one whole pass (or fade cycle) spans the images (the scale is reported); a number gives
the scale (1 = real time: then only the fading moves within the run).

Rows: the references run first -- ``fixed`` (no feedback: every image encoded for --design-snr),
``fixed_repeat`` (the same again: its ``below_fixed`` / ``worst_vs_fixed_db`` are the run-to-run
jitter, the receiver's batching follows the wall clock) and ``instant`` at 0 ms (the loop without
delay) -- then every (delay, policy). Each: ``roi_psnr`` /
``roi_psnr_min`` (dB over the images; a lost image counts as grey), ``images_lost``,
``frames_sent`` / ``frames_decoded``, ``cau_err_db`` (mean of encoding SNR - channel SNR, the
channel SNR = --snr + the profile's large-scale gain over the image's air time),
``cau_err_rms_db``, ``d_vs_instant_db`` (mean ROI-PSNR minus instant-at-0 ms),
``below_fixed`` (images whose ROI-PSNR is more than --tolerance-db below the fixed design's for
the same image; identical encodings differ by up to ~0.3 dB between runs, the receiver's
batching is not sample-exact) and
``worst_vs_fixed_db`` (the largest shortfall), ``wall_s``; with --json also per image:
``per_image`` (ROI-PSNR), ``cau_snr`` (encoding SNR), ``chan_snr``, ``pass_t`` (pass time of
the image's slot, s) and ``frames_lost``.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from phy_common import emit  # noqa: E402

COLUMNS = ["profile", "delay_ms", "policy", "roi_psnr", "roi_psnr_min", "images_lost", "frames_sent",
           "frames_decoded", "cau_err_db", "cau_err_rms_db", "d_vs_instant_db", "below_fixed",
           "worst_vs_fixed_db", "wall_s"]


class _Counter:
    """Counts the receiver's PDUs (frames detected; crc_ok ones) from a message port."""

    def __init__(self):
        import pmt
        from gnuradio import gr

        class counter(gr.basic_block):
            def __init__(self):
                gr.basic_block.__init__(self, name="late_fb_counter", in_sig=None, out_sig=None)
                self.detected = 0
                self.ok = 0
                self.message_port_register_in(pmt.intern("in"))
                self.set_msg_handler(pmt.intern("in"), self.handle)

            def handle(self, msg):
                self.detected += 1
                if pmt.is_pair(msg) and pmt.is_dict(pmt.car(msg)):
                    c = pmt.dict_ref(pmt.car(msg), pmt.intern("crc_ok"), pmt.PMT_F)
                    self.ok += int(pmt.is_bool(c) and pmt.to_bool(c))

        self.block = counter()


def make_slotter(slot: int):
    """A block that starts image k's first burst at output sample k*slot (zeros in between; an
    image longer than its slot just pushes the next one). The encoding SNR changes an image's
    frame count now and then; without fixed slots every later image would meet other fading and
    noise samples, and per-image comparisons between policies would compare channels."""
    import numpy as np
    import pmt
    from gnuradio import gr

    class slotter(gr.basic_block):
        def __init__(self):
            gr.basic_block.__init__(self, name="late_fb_slotter", in_sig=[np.complex64], out_sig=[np.complex64])
            self.set_tag_propagation_policy(gr.TPP_DONT)
            self.slot = int(slot)
            self.pad_left = 0
            self.last_image = None
            self.handled = -1            # input offset of the last new-image tag handled
            self.starts = []             # output sample where each image's first burst starts

        def forecast(self, noutput_items, ninputs):
            return [0 if self.pad_left else 1]

        def _next_new_image(self, lo, hi):
            for t in self.get_tags_in_range(0, lo, hi, pmt.intern("frame")):
                iid = pmt.to_long(pmt.dict_ref(t.value, pmt.intern("image_id"), pmt.from_long(-1)))
                if t.offset > self.handled and iid != self.last_image:
                    return t.offset, iid
            return None

        def general_work(self, input_items, output_items):
            inp, out = input_items[0], output_items[0]
            r0, w0 = self.nitems_read(0), self.nitems_written(0)
            used = made = 0
            while made < len(out):
                if self.pad_left:
                    k = min(self.pad_left, len(out) - made)
                    out[made:made + k] = 0
                    made += k
                    self.pad_left -= k
                    continue
                nxt = self._next_new_image(r0 + used, r0 + len(inp))
                if nxt is not None and nxt[0] == r0 + used:
                    self.handled, self.last_image = nxt
                    target = len(self.starts) * self.slot
                    self.pad_left = max(0, target - (w0 + made))
                    self.starts.append(w0 + made + self.pad_left)
                    continue
                limit = (nxt[0] - r0) if nxt is not None else len(inp)
                k = min(limit - used, len(out) - made)
                if k <= 0:
                    break
                out[made:made + k] = inp[used:used + k]
                for t in self.get_tags_in_range(0, r0 + used, r0 + used + k):
                    self.add_item_tag(0, w0 + made + t.offset - (r0 + used), t.key, t.value, t.srcid)
                used += k
                made += k
            self.consume(0, used)
            return made

    return slotter()


def air_samples_per_image(codec, cfg, params, image, mask) -> tuple[int, int]:
    """(samples on air, frames) for one image (frames with their guards, as ofdm_analog_tx makes them)."""
    from gnuradio.medjscc.blocks.jscc_tx import encode_frames
    from gnuradio.medjscc.blocks.ofdm_analog_tx import ofdm_analog_tx

    _, frames = encode_frames(codec, image, mask, 10.0, cfg.codec.cbr, 0, params)
    mod = ofdm_analog_tx(params=params).modulator
    return int(sum(len(mod.modulate(meta, payload)) for meta, payload in frames)), len(frames)


def run_one(codec, cfg, params, profile: str, snr_db: float, policy: str, delay_ms: float,
            margin_db: float, design_snr_db: float, time_scale: float, seed: int, images, masks,
            frame_timeout_s: float = 3.0, history: int = 8, start_s: float = 0.0, slot: int = 0) -> dict:
    import numpy as np
    from gnuradio import gr

    from gnuradio.medjscc import metrics
    from gnuradio.medjscc.blocks._msgtools import quiet_gr_logs
    from gnuradio.medjscc.blocks.channel_preset import channel_preset
    from gnuradio.medjscc.blocks.jscc_rx import jscc_rx
    from gnuradio.medjscc.blocks.jscc_tx import jscc_tx
    from gnuradio.medjscc.blocks.loopback import _wait
    from gnuradio.medjscc.blocks.ofdm_analog_rx import ofdm_analog_rx
    from gnuradio.medjscc.blocks.ofdm_analog_tx import ofdm_analog_tx
    from gnuradio.medjscc.blocks.radio_profiles import get_radio_profile
    from gnuradio.medjscc.blocks.snr_feedback import snr_feedback

    t0 = time.perf_counter()
    fs = float(get_radio_profile(profile).sample_rate_hz) if profile not in ("awgn",) else 1e6
    size = int(cfg.image_size)
    tb = gr.top_block("late_feedback")
    otx = ofdm_analog_tx(params=params)
    slots = make_slotter(slot) if slot > 0 else None

    def air_clock():                     # air time of the TX's last sample out (s)
        if slots is not None:
            return slots.nitems_written(0) / fs
        return (otx.nitems_written(0) + otx.queued_samples()) / fs

    def meas_time(info):                 # the frame's own air time (receiver sample count)
        s = info.get("start_sample")
        return None if s is None else float(s) / fs

    from gnuradio.medjscc.blocks.snr_feedback_policy import FeedbackPolicy

    pol = FeedbackPolicy(policy, design_snr_db, margin_db, delay_ms / 1000.0, history=history)
    tx = jscc_tx(model=codec, cbr=cfg.codec.cbr, image_size=size, snr_db=design_snr_db, params=params,
                 feedback_policy=pol, clock=air_clock, meas_time=meas_time)
    ch = channel_preset(profile, snr_db, seed=seed, params=params, time_scale=time_scale)
    if start_s and hasattr(ch.fading, "combine"):
        ch.fading.combine.set_pass_time(start_s)
    orx = ofdm_analog_rx(params=params, equalizer=cfg.ofdm.equalizer, min_batch=cfg.ofdm.min_batch,
                         max_latency_ms=cfg.ofdm.max_latency_ms)
    rx = jscc_rx(model=codec, image_size=size, cbr=cfg.codec.cbr, params=params, timeout_s=60.0)
    fb = snr_feedback()
    cnt = _Counter().block
    tb.msg_connect(tx, "frames", otx, "pdus")
    if slots is not None:
        tb.connect(otx, slots, ch, orx)
    else:
        tb.connect(otx, ch, orx)
    tb.msg_connect(orx, "pdus", rx, "pdus")
    tb.msg_connect(orx, "pdus", fb, "rx")
    tb.msg_connect(orx, "pdus", cnt, "in")
    tb.msg_connect(fb, "snr", tx, "snr")
    with quiet_gr_logs():
        tb.start()
    sent, starts, ends = 0, [], []
    try:
        for img, m in zip(images, masks):
            starts.append(air_clock())
            sent += len(tx.send_image(np.asarray(img, np.uint8), np.asarray(m, bool)))
            # every frame of this image out of the receiver (and its feedback into the CAU) before
            # the next is encoded: back-to-back in air time whatever the wall-clock speed
            deadline = time.monotonic() + frame_timeout_s
            while time.monotonic() < deadline and (cnt.detected < sent or tx.feedback_count < cnt.ok):
                time.sleep(0.002)
            ends.append(air_clock())     # all its frames written: the end of its air time
    finally:
        tx.finish()
    _wait(tb, 300.0)
    by_id = {r["image_id"]: r for r in rx.results}
    grey = np.full((size, size), 128, np.uint8)
    from gnuradio.medjscc.blocks.sat_channel import SatDynamics

    prof = get_radio_profile(profile)
    dyn = SatDynamics(prof, seed) if prof.is_satellite else None
    roi, lost, err, chans = [], 0, [], []
    if slots is not None and len(slots.starts) == len(images):    # the images' real air slots
        starts = [x / fs for x in slots.starts]
    for i, (img, m) in enumerate(zip(images, masks)):
        r = by_id.get(i)
        ok = r is not None and (bool(r["decoded"]) if "decoded" in r else int(r.get("frames_ok", 0)) > 0)
        lost += int(not ok)
        roi.append(metrics.roi_psnr(img, r["image"] if r is not None else grey, m))
        if dyn is not None:
            tt = start_s + np.linspace(starts[i], ends[i], 16) * time_scale
            chan = snr_db + 10 * math.log10(float(np.mean(10 ** (dyn.gain_db(tt) / 10))))
        else:
            chan = snr_db
        err.append(tx.history[i]["snr_db"] - chan)
        chans.append(chan)
    rec = dict(profile=profile, delay_ms=float(delay_ms), policy=policy, roi_psnr=float(np.mean(roi)),
               roi_psnr_min=float(np.min(roi)), images_lost=lost, frames_sent=sent, frames_decoded=cnt.ok,
               cau_err_db=float(np.mean(err)), cau_err_rms_db=float(np.sqrt(np.mean(np.square(err)))),
               per_image=[round(float(x), 3) for x in roi], time_scale=time_scale,
               cau_snr=[round(float(h["snr_db"]), 2) for h in tx.history[:len(images)]],
               chan_snr=[round(float(c), 2) for c in chans],
               pass_t=[round(start_s + float(x) * time_scale, 3) for x in starts],
               frames_lost=[int(h["frames"]) - int((by_id.get(i) or {}).get("frames_ok", 0))
                            for i, h in enumerate(tx.history[:len(images)])],
               pass_s=round((ends[-1] - starts[0]) * time_scale, 1))
    rec["wall_s"] = round(time.perf_counter() - t0, 2)
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="leo_pass", help="radio profile / channel preset")
    ap.add_argument("--snr", type=float, default=10.0, help="channel SNR in dB (a pass: its average)")
    ap.add_argument("--design-snr", type=float, default=None, help="fixed design SNR (default: --snr)")
    ap.add_argument("--images", type=int, default=40, help="test-split DRR images per run")
    ap.add_argument("--delays", default="30", help="feedback delays in ms (air time), comma-separated")
    ap.add_argument("--policies", default="instant,margin,predict", help="CAU policies at each delay")
    ap.add_argument("--margin-db", type=float, default=1.0, help="margin of the margin/predict policies")
    ap.add_argument("--history", type=int, default=8,
                    help="predict: line fitted through this many latest estimates (one per frame)")
    ap.add_argument("--time-scale", default="pass",
                    help="'pass' (one pass / fade cycle over the images) or a number (1 = real time)")
    ap.add_argument("--start-s", type=float, default=0.0,
                    help="satellite profiles: pass time (s) at the first sample, e.g. 25 = 5 s before geo_link's fade")
    ap.add_argument("--seed", type=int, default=0, help="channel seed (image set is fixed)")
    ap.add_argument("--tolerance-db", type=float, default=0.5,
                    help="below_fixed counts images more than this below the fixed design's ROI-PSNR")
    ap.add_argument("--model", default="medjscc", help="codec name or weights path")
    ap.add_argument("--cbr", default="1/16", help="target CBR")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from gnuradio.medjscc import demo
    from gnuradio.medjscc.blocks._codecadapt import get_codec
    from gnuradio.medjscc.blocks._phyadapt import make_params
    from gnuradio.medjscc.blocks.radio_profiles import get_radio_profile
    from gnuradio.medjscc.blocks.sat_channel import SatDynamics
    from gnuradio.medjscc.blocks.snr_feedback_policy import POLICIES
    from gnuradio.medjscc.config import LinkConfig
    from gnuradio.medjscc.errors import MedJSCCError
    from gnuradio.medjscc.snr import parse_number

    try:
        prof = get_radio_profile(args.profile)
        delays = [float(d) for d in args.delays.split(",") if d.strip()]
        policies = [p.strip() for p in args.policies.split(",") if p.strip()]
        bad = [p for p in policies if p not in POLICIES]
        if bad or any(d < 0 or not math.isfinite(d) for d in delays) or args.images < 2:
            raise MedJSCCError(f"policies must be among {', '.join(POLICIES)}, delays >= 0, --images >= 2")
        cfg = LinkConfig()
        cfg.codec.model, cfg.codec.cbr = args.model, parse_number(args.cbr)
        cfg.validate()
        codec = get_codec(cfg.codec.model, device=cfg.codec.device)
    except (MedJSCCError, ValueError) as e:
        print(f"late_feedback: {e}", file=sys.stderr)
        return 2
    images, masks, _ = demo._load_images(args.images, args.seed)
    params = make_params(cfg.ofdm)
    # one fixed air slot per image: the longest image at the design SNR plus one frame of slack
    sizes = [air_samples_per_image(codec, cfg, params, im, mk) for im, mk in zip(images, masks)]
    slot = max(n for n, _ in sizes) + max(n // f for n, f in sizes)
    if args.time_scale == "pass":
        period = SatDynamics(prof).period_s if prof.is_satellite else None
        time_scale = period / (args.images * slot / prof.sample_rate_hz) if period else 1.0
    else:
        time_scale = float(args.time_scale)
    design = args.snr if args.design_snr is None else args.design_snr
    # fixed twice: identical transmissions, so their difference is the run-to-run jitter of the
    # receiver (its batching follows the wall clock) against which per-image differences count
    runs = [("fixed", 0.0), ("fixed", 0.0), ("instant", 0.0)] + [(p, d) for d in delays for p in policies]
    ref = {}
    for policy, delay in runs:
        rec = run_one(codec, cfg, params, args.profile, args.snr, policy, delay, args.margin_db, design,
                      time_scale, args.seed, images, masks, history=args.history, start_s=args.start_s,
                      slot=slot)
        repeat = policy == "fixed" and "fixed" in ref
        if (policy, delay) in (("fixed", 0.0), ("instant", 0.0)) and policy not in ref:
            ref[policy] = rec
        fixed, inst = ref.get("fixed"), ref.get("instant")
        rec["d_vs_instant_db"] = rec["roi_psnr"] - inst["roi_psnr"] if inst else None
        if fixed is not None:
            short = [f - x for x, f in zip(rec["per_image"], fixed["per_image"])]
            rec["below_fixed"] = sum(s > args.tolerance_db for s in short)
            rec["worst_vs_fixed_db"] = max(0.0, max(short))
        per = ("per_image", "cau_snr", "chan_snr", "pass_t", "frames_lost")
        out = {c: rec.get(c) for c in COLUMNS} | {k: rec[k] for k in ("time_scale", "pass_s") + per}
        out["design_snr_db"], out["margin_db"], out["snr_db"] = design, args.margin_db, args.snr
        out["history"] = args.history
        if repeat:
            out["policy"] = "fixed_repeat"
        if not args.json:
            for k in per:
                out.pop(k)
        emit(out, args.json, COLUMNS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
