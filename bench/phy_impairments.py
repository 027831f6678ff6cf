#!/usr/bin/env python3
"""Over-the-air impairment bench: the full GNU Radio link through every radio profile.

    python bench/phy_impairments.py --json [--profiles clean,cfo_1p5,...] [--snr 0,10,20]
                                    [--images 6] [--seed 0 | --seeds 0,1,2,3] [--model medjscc]
                                    [--cbr 1/16] [--repeat-strong 0.2] [--csi-feedback]
                                    [--ofdm-... / --config link.yaml: the link's OFDM options]

jscc_tx -> ofdm_analog_tx -> channel_preset(<profile>) -> ofdm_analog_rx -> jscc_rx (the blocks
of ``loopback.build_loopback``), one top block per (profile, SNR), the images sent back to back.
Test-split DRR images (rendered on demand like the demo) with their ground-truth lung masks as
oracle ROI, the shipped model at CBR 1/16. Every profile sees the same images and, at a given SNR,
the same channel seeds (noise, fading) as the ``clean`` reference (AWGN only), which always runs.

One record per (profile, snr_db) (a JSON line with --json):
``frames_sent`` / ``frames_detected`` (preambles the OFDM receiver found, header CRC good or
not) / ``frames_decoded`` (frames with a valid header that reached the image assembler), ``images_decoded`` (produced from received frames, not the grey fallback),
``roi_psnr`` / ``psnr`` (dB, mean over all images against the originals; a lost image counts as
the grey fallback), ``roi_psnr_clean`` (the clean run at the same SNR), ``snr_est_db`` (mean of
the receiver's per-image estimates), ``papr_db`` (peak/mean power of the non-zero TX samples at
the DAC) and ``clip_fraction`` (I/Q values beyond DAC full scale; 0 for profiles without a DAC
amplitude), ``wall_s`` (seconds for the row); satellite profiles (time-varying gain) add
``sat_gain_db`` = [min, mean, max] of their received-power gain over the run and ``pass_s`` the
pass time it covered (``--time-scale k``: their slow dynamics k times faster than real time, e.g.
a whole 510 s LEO pass within the images' air time). Profiles: ``hw_configs/radio_profiles.yaml``.

``--csi-feedback`` closes the carrier-ranking loop (``phy.csi``): after each image the bench waits
for the receiver's feedback (stop-and-wait), and the transmitter maps the next images onto the
carriers the receiver ranked (on static selective channels; the first image of a run always goes
without, and is counted). Records then add ``images_csi`` (images sent with a ranking). The
``clean`` reference runs the same way.

``--snr-loop`` closes the SNR loop (stop-and-wait as above): the encoder designs each image for the
SNR fed back about the previous one (``--feedback-estimate snr`` or ``effective``: the SNR after
the equaliser, what a digital MCS needs on selective channels) less ``--feedback-margin`` dB; the
first image uses the nominal SNR. Records add ``tx_snr_db`` (mean SNR the images were encoded for).
``--feedback-policy olla`` also backs off by what the receiver's verdicts taught (``jscc_rx``
metrics -> ``jscc_tx`` ``ack``; ``snr_feedback_policy``), and records add ``olla_offset_db``.
For the hybrid models this is how the base MCS follows the channel.
``--layered-until-feedback`` (hybrid models): images encoded for the nominal SNR (the loop's
first image; every image without ``--snr-loop``) send a two-layer base (``jscc_tx``'s option of
that name); records add ``images_layered``. Wherever two-layer frames go (that option, or
``--model hybrid_layered``), records add ``images_first_layer``: images shown from the first layer
alone (the finer layer's frame lost), counted among ``images_decoded``.
``--retransmissions N``: the receiver keeps an image whose frames did not all come, its verdict
names them, and the transmitter sends them again (at most N times per image; ``jscc_tx``
max_retransmissions, ``jscc_rx`` retransmit_hold_s); the bench waits for the verdicts before the
next image. ``frames_sent`` counts the frames sent again, and records add
``images_retransmitted``, ``frames_retransmitted`` and ``images_completed_by_retransmission``.

``--seeds 0,1,2,3`` runs the whole bench once per channel seed (gr-channels' fading is not
seeded: one run of a fading profile moves by tenths of a dB), each record stating its ``seed``,
then one summary record per (profile, snr_db) with ``seed`` "all": ``roi_change_db`` (mean of
roi_psnr - roi_psnr_clean over the seeds), ``roi_change_min_db`` / ``roi_change_max_db``,
``roi_psnr`` / ``roi_psnr_clean`` (means) and the frame and image counts summed over the seeds.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from phy_common import emit  # noqa: E402

COLUMNS = ["profile", "snr_db", "frames_sent", "frames_detected", "frames_decoded", "images_decoded", "roi_psnr",
           "roi_psnr_clean", "psnr", "snr_est_db", "papr_db", "clip_fraction", "wall_s"]


def _mean(values) -> float:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(sum(v) / len(v)) if v else float("nan")


def _settle(tx, frames_sent: int, quiet_s: float = 0.3):
    """Wait for the feedback of every frame sent so far (lost frames: until none came for quiet_s)."""
    last, t_last = tx.feedback_count, time.monotonic()
    while tx.feedback_count < frames_sent and time.monotonic() - t_last < quiet_s:
        time.sleep(0.005)
        if tx.feedback_count != last:
            last, t_last = tx.feedback_count, time.monotonic()


def _await_acks(tx, images_sent: int, timeout_s: float):
    """Wait until the receiver's verdicts on every image sent so far reached the TX (olla): the
    receiver decodes in its own thread, after the frames' SNR feedback went out."""
    deadline = time.monotonic() + timeout_s
    while sum(tx.policy.acks) < images_sent and time.monotonic() < deadline:
        time.sleep(0.005)


def run_one(codec, cfg, params, profile: str, snr_db: float, seed: int, images, masks,
            timeout_s: float = 300.0, time_scale: float = 1.0, csi_feedback: bool = False,
            feedback_timeout_s: float = 5.0, feedback_quiet_s: float = 0.3, snr_loop: bool = False,
            feedback_estimate: str = "snr", feedback_margin_db: float = 0.0,
            feedback_policy: str = "margin", layered_until_feedback: bool = False,
            retransmissions: int = 0) -> dict:
    """One top block: every image through ``profile`` at ``snr_db``; returns the record (no clean ref)."""
    import numpy as np

    from gnuradio.medjscc import metrics
    from gnuradio.medjscc.blocks._msgtools import quiet_gr_logs
    from gnuradio.medjscc.blocks.loopback import _wait, build_loopback

    t0 = time.perf_counter()
    blocks = build_loopback(codec, cfg, snr_db, channel=profile, seed=seed, params=params,
                            csi_feedback=csi_feedback, snr_loop=snr_loop, feedback_estimate=feedback_estimate,
                            feedback_margin_db=feedback_margin_db, feedback_policy=feedback_policy,
                            layered_until_feedback=layered_until_feedback,
                            max_retransmissions=retransmissions)
    tb, tx, rx, ch = blocks["tb"], blocks["jscc_tx"], blocks["jscc_rx"], blocks["channel"]
    if time_scale != 1.0:
        ch.set_time_scale(time_scale)
    with quiet_gr_logs():   # hier-block buffer settings are logged at start
        tb.start()
    sent = []
    try:
        for img, m in zip(images, masks):
            sent.append(len(tx.send_image(np.asarray(img, np.uint8), np.asarray(m, bool))))
            if csi_feedback or snr_loop:   # stop-and-wait: the next image may use what this one taught
                if tx.await_feedback(feedback_timeout_s):
                    _settle(tx, sum(sent), feedback_quiet_s)
                if snr_loop and feedback_policy == "olla":   # and the receiver's verdict on it
                    _await_acks(tx, len(sent), feedback_timeout_s)
            if retransmissions:   # stop-and-wait on the verdicts: the lost frames go again first
                tx.await_verdicts(feedback_timeout_s)
    finally:
        tx.finish()   # eos: the stream ends and the whole graph drains
    _wait(tb, timeout_s)
    by_id = {r["image_id"]: r for r in rx.results}
    roi, full, est, frames_ok, decoded, first_layer = [], [], [], 0, 0, 0
    grey = np.full((cfg.image_size,) * 2, 128, np.uint8)
    for i, (img, m) in enumerate(zip(images, masks)):
        r = by_id.get(i)
        if r is None:
            ok = False
        elif "decoded" in r:    # jscc_rx's own verdict where it gives one (status decoded/partial)
            ok = bool(r["decoded"])
        else:                   # else: produced from received frames without a decoder error
            ok = int(r.get("frames_ok", 0)) > 0 and not r.get("error")
        received = r["image"] if r is not None else grey
        frames_ok += int(r.get("frames_ok", 0)) if r is not None else 0
        decoded += int(ok)
        first_layer += int(r is not None and r.get("shown") == "first_layer")
        roi.append(metrics.roi_psnr(img, received, m))
        full.append(metrics.psnr(img, received))
        if r is not None:
            est.append(float(r.get("snr_est_db", float("nan"))))
    rec = dict(profile=profile, snr_db=float(snr_db), frames_sent=int(sum(sent) + tx.frames_retransmitted),
               frames_decoded=int(frames_ok), images_decoded=int(decoded), images=len(images),
               roi_psnr=_mean(roi), psnr=_mean(full), snr_est_db=_mean(est),
               papr_db=float(ch.papr_db()), clip_fraction=float(ch.clip_fraction()))
    if snr_loop:   # the SNR each image was encoded for (and the learned back-off at the end)
        rec["tx_snr_db"] = _mean([h.get("snr_db") for h in tx.history])
        if feedback_policy == "olla":
            rec["olla_offset_db"] = round(tx.policy.olla_offset_db, 3)
    if getattr(codec, "layered", False) or layered_until_feedback:   # two-layer frames were sent
        rec["images_first_layer"] = first_layer
    if layered_until_feedback:
        rec["images_layered"] = sum(1 for h in tx.history if h.get("layered"))
    if retransmissions:
        rec.update(images_retransmitted=sum(1 for h in tx.history if h.get("retransmissions")),
                   frames_retransmitted=int(tx.frames_retransmitted),
                   images_completed_by_retransmission=int(rx.core.images_completed_by_retransmission))
    if csi_feedback:
        rec["images_csi"] = sum(1 for h in tx.history if h.get("csi_tag"))
    orx = blocks["ofdm_rx"]
    rec["frames_detected"] = int(orx.frames_ok + orx.frames_bad)
    trace = ch.sat_gain_trace() if hasattr(ch, "sat_gain_trace") else []
    if trace:
        g = [x[1] for x in trace]
        rec["sat_gain_db"] = [round(min(g), 2), round(sum(g) / len(g), 2), round(max(g), 2)]
        rec["pass_s"] = round(trace[-1][0] - trace[0][0], 1)
    rec["wall_s"] = round(time.perf_counter() - t0, 2)
    del blocks
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="profiles: see hw_configs/radio_profiles.yaml")
    ap.add_argument("--profiles", default="all",
                    help="comma-separated profile/preset names, or 'all' (every radio profile)")
    ap.add_argument("--snr", default="0,10,20", help="SNR list in dB, e.g. 0,10,20 or -5:25:5")
    ap.add_argument("--images", type=int, default=6, help="test-split DRR images per run")
    ap.add_argument("--seed", type=int, default=0, help="channel seed (image set is fixed)")
    ap.add_argument("--seeds", default=None,
                    help="comma-separated channel seeds: one run per seed, then a summary per row")
    ap.add_argument("--model", default="medjscc", help="codec name or weights path")
    ap.add_argument("--cbr", default="1/16", help="target CBR")
    ap.add_argument("--repeat-strong", type=float, default=None,
                    help="share of the strongest codec symbols sent twice (default: codec.repeat_strong)")
    ap.add_argument("--csi-feedback", action="store_true",
                    help="close the carrier-ranking feedback loop (stop-and-wait between images)")
    ap.add_argument("--snr-loop", action="store_true",
                    help="close the SNR loop: the encoder uses the fed-back SNR less --feedback-margin "
                         "(stop-and-wait between images; the first image uses the nominal SNR)")
    ap.add_argument("--feedback-estimate", choices=("snr", "effective"), default="snr",
                    help="--snr-loop: the per-frame figure fed back (snr_feedback's estimate)")
    ap.add_argument("--feedback-margin", type=float, default=0.0,
                    help="--snr-loop: dB below the fed-back SNR the encoder designs for")
    ap.add_argument("--feedback-policy", choices=("margin", "olla"), default="margin",
                    help="--snr-loop: margin = a fixed margin; olla = also a back-off learned from the "
                         "receiver's verdicts (outer-loop link adaptation)")
    ap.add_argument("--layered-until-feedback", action="store_true",
                    help="hybrid models: a two-layer base for the images encoded for the nominal SNR "
                         "(before the first feedback)")
    ap.add_argument("--retransmissions", type=int, default=0,
                    help="send the frames the receiver names as lost again, at most this many times per "
                         "image (jscc_tx max_retransmissions; stop-and-wait on the verdicts)")
    ap.add_argument("--feedback-timeout", type=float, default=5.0,
                    help="--csi-feedback / --snr-loop: seconds to wait for the first feedback about an image")
    ap.add_argument("--feedback-quiet", type=float, default=0.3,
                    help="--csi-feedback / --snr-loop: the image's feedback is complete when every frame's came, or none "
                         "for this many seconds (lost frames); raise it on a loaded machine")
    ap.add_argument("--json", action="store_true", help="one JSON object per line, no progress bar")
    ap.add_argument("--time-scale", type=float, default=1.0,
                    help="satellite profiles: slow dynamics (pass, fade, shadowing) this many times real time")
    from gnuradio.medjscc.config import LinkConfig

    LinkConfig.add_arguments(ap, sections=("ofdm",))   # the link's OFDM options, as on the CLI
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from gnuradio.medjscc import demo
    from gnuradio.medjscc.blocks._codecadapt import get_codec
    from gnuradio.medjscc.blocks._phyadapt import make_params
    from gnuradio.medjscc.blocks.channel_preset import preset_names
    from gnuradio.medjscc.blocks.radio_profiles import radio_profile_names
    from gnuradio.medjscc.errors import MedJSCCError
    from gnuradio.medjscc.snr import parse_number, parse_spec

    try:
        known = preset_names()
        names = list(radio_profile_names()) if args.profiles == "all" else \
            [p.strip() for p in args.profiles.split(",") if p.strip()]
        bad = [p for p in names if p not in known]
        if bad:
            raise MedJSCCError(f"unknown profile {bad[0]!r} (known: {', '.join(known)})")
        if args.images < 1:
            raise MedJSCCError("--images must be at least 1")
        if args.retransmissions < 0:
            raise MedJSCCError(f"--retransmissions must be >= 0, got {args.retransmissions}")
        if not (args.time_scale > 0 and math.isfinite(args.time_scale)):
            raise MedJSCCError(f"--time-scale must be > 0, got {args.time_scale}")
        snrs = parse_spec(args.snr)
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()] if args.seeds else [args.seed]
        if not seeds:
            raise MedJSCCError("--seeds needs at least one seed")
        cfg = LinkConfig.from_args(args)
        cfg.codec.model, cfg.codec.cbr, cfg.channel.seed = args.model, parse_number(args.cbr), args.seed
        if args.repeat_strong is not None:
            cfg.codec.repeat_strong = args.repeat_strong
        cfg.validate()
        codec = get_codec(cfg.codec.model, device=cfg.codec.device)
    except (MedJSCCError, ValueError) as e:
        print(f"phy_impairments: {e}", file=sys.stderr)
        return 2
    names = ["clean"] + [n for n in names if n != "clean"]   # the reference runs first
    images, masks, _ = demo._load_images(args.images, args.seed)
    params = make_params(cfg.ofdm)

    bar = None
    if not args.json:
        from tqdm import tqdm

        bar = tqdm(total=len(seeds) * len(names) * len(snrs), file=sys.stderr, unit="run")
    by_row: dict[tuple[str, float], list[dict]] = {}
    for base_seed in seeds:
        clean = {}
        for k, snr in enumerate(snrs):
            seed = base_seed + 1000 * k     # same per-SNR seeds as run_ofdm_loopback, for every profile
            for name in names:
                if bar is not None:
                    bar.set_description(f"seed {base_seed} {name} {snr:g} dB")
                rec = run_one(codec, cfg, params, name, float(snr), seed, images, masks,
                              time_scale=args.time_scale, csi_feedback=args.csi_feedback,
                              feedback_timeout_s=args.feedback_timeout, feedback_quiet_s=args.feedback_quiet,
                              snr_loop=args.snr_loop, feedback_estimate=args.feedback_estimate,
                              feedback_margin_db=args.feedback_margin, feedback_policy=args.feedback_policy,
                              layered_until_feedback=args.layered_until_feedback,
                              retransmissions=args.retransmissions)
                if name == "clean":
                    clean[k] = rec["roi_psnr"]
                rec["roi_psnr_clean"] = clean[k]
                out = {c: rec.get(c) for c in COLUMNS} | {"images": rec["images"]}
                out |= {k: rec[k] for k in ("sat_gain_db", "pass_s", "images_csi", "tx_snr_db", "olla_offset_db",
                                                  "images_layered", "images_first_layer", "images_retransmitted",
                                                  "frames_retransmitted", "images_completed_by_retransmission")
                        if k in rec}
                if len(seeds) > 1:
                    out["seed"] = base_seed
                by_row.setdefault((name, float(snr)), []).append(dict(out))
                if not args.json and math.isfinite(out["clip_fraction"]):
                    out["clip_fraction"] = f"{out['clip_fraction']:.2e}"   # the table's .3f hides it
                emit(out, args.json, COLUMNS)
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    if len(seeds) > 1:
        for (name, snr), recs in by_row.items():
            emit(summarise(name, snr, recs), args.json, SUMMARY_COLUMNS)
    return 0


SUMMARY_COLUMNS = ["profile", "snr_db", "seed", "roi_change_db", "roi_change_min_db", "roi_change_max_db",
                   "roi_psnr", "roi_psnr_clean", "frames_decoded", "frames_sent", "images_decoded", "images"]


def summarise(name: str, snr: float, recs: list[dict]) -> dict:
    """One row over several seeds: the mean change against each seed's own clean run, its range,
    and the counts summed."""
    change = [r["roi_psnr"] - r["roi_psnr_clean"] for r in recs
              if r["roi_psnr"] is not None and r["roi_psnr_clean"] is not None]
    return {"profile": name, "snr_db": snr, "seed": "all", "seeds": [r.get("seed") for r in recs],
            "roi_change_db": _mean(change), "roi_change_min_db": min(change, default=float("nan")),
            "roi_change_max_db": max(change, default=float("nan")),
            "roi_psnr": _mean(r["roi_psnr"] for r in recs), "roi_psnr_clean": _mean(r["roi_psnr_clean"] for r in recs),
            **{k: int(sum(r[k] for r in recs)) for k in ("frames_decoded", "frames_sent", "images_decoded", "images")
               + tuple(k for k in ("images_first_layer", "images_layered", "images_retransmitted",
                                   "frames_retransmitted", "images_completed_by_retransmission") if k in recs[0])}}


if __name__ == "__main__":
    sys.exit(main())
