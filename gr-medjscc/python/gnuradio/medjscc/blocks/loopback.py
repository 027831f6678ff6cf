"""Headless OFDM loopback used by ``make demo`` and tests: JSCC TX -> OFDM TX -> channel -> OFDM RX
-> JSCC RX, one GNU Radio top block per SNR.

    from gnuradio.medjscc.blocks.loopback import run_ofdm_loopback
    results = run_ofdm_loopback(images, masks, LinkConfig(), [0, 5, 10, 20], channel="awgn")

Each result: ``dict(snr_db, image_index, received (uint8 HxW), snr_est_db, frames_ok,
frames_total, cbr_total, cbr_payload, cbr_air (every sample on air per pixel), status, decoded,
decode_snr_db, error)``, and for the hybrid codec ``shown``, ``base_ok``, ``side_frame_ok``,
``layout``, ``refined``, ``design_snr_db`` (what decoded: ``jscc_rx``). The transmitter's CAU uses the
nominal channel SNR (what the feedback loop converges to; see ``snr_feedback`` for the closed
loop), the receiver decodes with its own per-frame SNR estimates.
"""
from __future__ import annotations

import logging
import time

import numpy as np
from gnuradio import gr

from ..config import LinkConfig
from ..errors import MedJSCCError
from ._msgtools import quiet_gr_logs
from ._phyadapt import make_params
from .channel_preset import PRESETS, channel_preset
from .jscc_rx import jscc_rx
from .jscc_tx import jscc_tx
from .ofdm_analog_rx import ofdm_analog_rx
from .ofdm_analog_tx import ofdm_analog_tx

log = logging.getLogger(__name__)
HYBRID_RESULT_KEYS = ("shown", "base_ok", "side_frame_ok", "layout", "refined", "design_snr_db", "base_layers")


def build_loopback(codec, cfg: LinkConfig, snr_db: float, channel: str = "awgn", seed: int = 0,
                   params=None, tx_snr_db: float | None = None, cfo: float | None = None,
                   csi_feedback: bool = False, snr_loop: bool = False, feedback_estimate: str = "snr",
                   feedback_margin_db: float = 0.0, feedback_policy: str = "margin",
                   layered_until_feedback: bool = False, max_retransmissions: int = 0,
                   retransmit_hold_s: float = 5.0):
    """Top block + its blocks (the caller must keep the returned dict alive while it runs).

    ``csi_feedback``: close the carrier-ranking loop (``phy.csi``): an ``snr_feedback`` block
    ranks the carriers from the received frames and feeds the ranking to ``jscc_tx``
    (``csi_mapping`` on) and ``jscc_rx``. The CAU still encodes for the nominal SNR (policy
    ``fixed``). Images see the ranking only if the caller waits for feedback between them
    (``jscc_tx.await_feedback``).

    ``snr_loop``: close the SNR loop too: the CAU encodes for the fed-back SNR (``snr_feedback``
    smoothing ``feedback_estimate``, ``snr`` or ``effective``) less ``feedback_margin_db`` (policy
    ``margin``; ``olla`` also less the back-off learned from ``jscc_rx``'s verdicts, which then go
    to ``jscc_tx``'s ``ack``), from the nominal SNR until the first feedback. Same pacing caveat.
    ``layered_until_feedback``: ``jscc_tx``'s option (a hybrid sends a two-layer base while it
    encodes for the nominal SNR: the first image of a loop, every image without the loop).
    ``max_retransmissions`` > 0: ``jscc_rx``'s verdicts go to ``jscc_tx``'s ``ack``, the receiver
    keeps an image with frames missing for ``retransmit_hold_s`` and the transmitter sends those
    frames again (at most that many times per image); images end 1 s after their last frame
    (a frame later than that is a retransmission and completes the image again). The caller
    paces the images (``jscc_tx.acks_received``, ``retransmissions``)."""
    params = params if params is not None else make_params(cfg.ofdm)
    preset = "awgn" if channel in ("erasure",) else channel
    if preset not in PRESETS:
        raise MedJSCCError(f"loopback channel must be one of {PRESETS}, got {channel!r}")
    size = int(cfg.image_size)
    tb = gr.top_block("medjscc_loopback")
    blocks = {
        "tb": tb,
        "jscc_tx": jscc_tx(model=codec, cbr=cfg.codec.cbr, image_size=size,
                           snr_db=snr_db if tx_snr_db is None else tx_snr_db, params=params,
                           repeat_strong=cfg.codec.repeat_strong, csi_mapping=bool(csi_feedback),
                           feedback_policy=feedback_policy if snr_loop else "fixed",
                           feedback_margin_db=float(feedback_margin_db),
                           layered_until_feedback=bool(layered_until_feedback),
                           max_retransmissions=int(max_retransmissions)),
        "ofdm_tx": ofdm_analog_tx(params=params),
        "channel": channel_preset(preset, snr_db, cfo=cfg.channel.cfo if cfo is None else cfo,
                                  seed=seed, params=params),
        "ofdm_rx": ofdm_analog_rx(params=params, equalizer=cfg.ofdm.equalizer,
                                  min_batch=cfg.ofdm.min_batch, max_latency_ms=cfg.ofdm.max_latency_ms),
        # images end when complete, when the next image starts or when the drained graph stops;
        # the timeout is only for a stalled stream, long enough that a loaded machine cannot
        # cut an image in two
        "jscc_rx": jscc_rx(model=codec, image_size=size, cbr=cfg.codec.cbr, params=params,
                           timeout_s=1.0 if max_retransmissions > 0 else 60.0,
                           retransmit_hold_s=float(retransmit_hold_s) if max_retransmissions > 0 else 0.0),
    }
    tb.msg_connect(blocks["jscc_tx"], "frames", blocks["ofdm_tx"], "pdus")
    tb.connect(blocks["ofdm_tx"], blocks["channel"], blocks["ofdm_rx"])
    tb.msg_connect(blocks["ofdm_rx"], "pdus", blocks["jscc_rx"], "pdus")
    if csi_feedback or snr_loop:
        from .snr_feedback import snr_feedback

        blocks["feedback"] = snr_feedback(csi=bool(csi_feedback), estimate=feedback_estimate)
        tb.msg_connect(blocks["ofdm_rx"], "pdus", blocks["feedback"], "rx")
        tb.msg_connect(blocks["feedback"], "snr", blocks["jscc_tx"], "snr")
        tb.msg_connect(blocks["feedback"], "snr", blocks["jscc_rx"], "snr")
    if (snr_loop and feedback_policy == "olla") or max_retransmissions > 0:
        tb.msg_connect(blocks["jscc_rx"], "ack", blocks["jscc_tx"], "ack")
    return blocks


def run_ofdm_loopback(images, masks, cfg: LinkConfig | None = None, snr_db_list=(10.0,),
                      channel: str = "awgn", codec=None, timeout_s: float = 120.0,
                      progress=None) -> list[dict]:
    """Send every image over the OFDM loopback at every SNR; see the module doc for the result keys.

    ``progress``: called with the number of images done after each SNR (e.g. a tqdm bar's update).

    ``codec``: a Codec object; default ``load_codec(cfg.codec.model)`` (shipped weights).
    """
    from ._codecadapt import get_codec

    cfg = (cfg or LinkConfig()).validate()
    if masks is None:
        masks = [None] * len(images)
    if len(masks) != len(images):
        raise MedJSCCError(f"{len(images)} images but {len(masks)} masks")
    codec = get_codec(codec if codec is not None else cfg.codec.model, device=cfg.codec.device)
    params = make_params(cfg.ofdm)
    results = []
    for k, snr in enumerate(snr_db_list):
        blocks = build_loopback(codec, cfg, float(snr), channel, seed=cfg.channel.seed + 1000 * k,
                                params=params)
        tb, tx, rx = blocks["tb"], blocks["jscc_tx"], blocks["jscc_rx"]
        t0 = time.monotonic()
        with quiet_gr_logs():   # hier-block buffer settings are applied (and logged) at start
            tb.start()
        sent = []
        try:
            for img, m in zip(images, masks):
                frames = tx.send_image(np.asarray(img, np.uint8), None if m is None else np.asarray(m, bool))
                meta = dict(frames[0][0]) if frames else {}
                # every complex sample this image cost on air (preambles, headers, pilots, CP)
                # (with the header format the OFDM TX picks for each frame)
                meta["air_samples"] = sum(params.frame_len(int(m["payload_len"]), params.tx_header_format(m.get("tx_snr_db")))
                                          for m, _ in frames)
                meta["pixels"] = int(np.asarray(img).size)
                sent.append(meta)
        finally:
            tx.finish()  # eos -> the OFDM TX stream ends -> the whole graph drains and stops
        _wait(tb, timeout_s)
        by_id = {r["image_id"]: r for r in rx.results}
        for i, meta in enumerate(sent):
            r = by_id.get(i)
            if r is None:  # every frame of this image was lost
                r = {"image": np.full((cfg.image_size,) * 2, 128, np.uint8), "snr_est_db": float("nan"),
                     "frames_ok": 0, "frames_total": int(meta.get("frame_count", 0)),
                     "decode_snr_db": float("nan"), "error": "no frame received"}
            results.append(dict(snr_db=float(snr), image_index=i, received=r["image"],
                                snr_est_db=float(r["snr_est_db"]), frames_ok=int(r["frames_ok"]),
                                frames_total=int(r["frames_total"] or meta.get("frame_count", 0)),
                                cbr_total=float(meta.get("cbr_total", float("nan"))),
                                cbr_payload=float(meta.get("cbr_payload", float("nan"))),
                                cbr_air=float(meta["air_samples"] / meta["pixels"]) if meta else float("nan"),
                                status=r.get("status", "failed"), decoded=bool(r.get("decoded", False)),
                                decode_snr_db=float(r.get("decode_snr_db", float("nan"))),
                                error=r.get("error", ""),
                                # the hybrid codec's sections (jscc_rx._note_sections); absent for the others
                                **{k: r[k] for k in HYBRID_RESULT_KEYS if k in r}))
        log.info("loopback %s %.1f dB: %d images in %.2f s", channel, snr, len(images),
                 time.monotonic() - t0)
        if progress is not None:
            progress(len(images))
        del blocks
    return results


def _wait(tb, timeout_s: float):
    """tb.wait() with a deadline: a stuck graph is stopped instead of hanging the caller."""
    import threading

    done = threading.Event()

    def waiter():
        tb.wait()
        done.set()

    threading.Thread(target=waiter, daemon=True).start()
    if not done.wait(timeout_s):
        log.error("loopback did not finish in %.0f s; stopping it", timeout_s)
        tb.stop()
        done.wait(10)
