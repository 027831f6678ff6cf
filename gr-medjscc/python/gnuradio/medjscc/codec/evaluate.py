"""Codec evaluation over a channel: the engine behind ``medjscc eval``.

Channel draws are seeded per (seed, image index, SNR) so every method sees the same noise and
fading realisations (the noise vector of a shorter transmission is a prefix of a longer one's).
Metrics always use the ground-truth mask; ``roi="auto"`` only changes the mask the *encoder* gets.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import metrics
from ..errors import MedJSCCError
from .api import Codec
from .channel import numpy_channel

KEYS = ("method", "channel", "snr_db", "cbr_target", "cbr_payload", "cbr_total", "psnr", "roi_psnr",
        "ms_ssim", "n_images")


def encoder_masks(pairs, roi: str = "oracle"):
    """Masks handed to the encoder: ground truth (``oracle``) or a segmenter's output (``auto``)."""
    if roi == "oracle":
        return [p["mask"] for p in pairs]
    if roi != "auto":
        raise MedJSCCError(f"--roi must be oracle or auto, got {roi!r}")
    try:
        from ..roi import get_segmenter
    except (ImportError, AttributeError):
        raise MedJSCCError("--roi auto needs gnuradio.medjscc.roi.get_segmenter, which is not available") from None
    seg = get_segmenter("auto")
    out = []
    for p in pairs:
        m = np.asarray(seg.segment(p["image"]), dtype=bool)
        if m.shape != p["image"].shape:
            raise MedJSCCError(f"auto segmenter returned a {m.shape} mask for a {p['image'].shape} image ({p['name']})")
        out.append(m)
    return out


def _snr_key(snr: float) -> int:
    return int(round(snr * 100)) + 100000


def evaluate(codec: Codec, pairs, channel: str = "awgn", snrs=(10.0,), cbrs=(1 / 16,), masks=None,
             seed: int = 0, method: str | None = None, progress=None):
    """Yield one result dict per (snr, cbr) (keys ``KEYS`` plus ``side_info_bits``, ``n_lost``)."""
    if not pairs:
        raise MedJSCCError("no images to evaluate")
    masks = masks if masks is not None else [p["mask"] for p in pairs]
    method = method or codec.name
    from .layers import SNR_MAX_DB, SNR_MIN_DB

    for snr in snrs:
        codec_snr = min(max(float(snr), SNR_MIN_DB), SNR_MAX_DB)
        if codec_snr != float(snr):
            warnings.warn(f"channel SNR {snr:g} dB is outside the codec's range; the codec is told {codec_snr:g} dB",
                          RuntimeWarning, stacklevel=2)
        for cbr in cbrs:
            acc = {k: [] for k in ("cbr_payload", "cbr_total", "psnr", "roi_psnr", "ms_ssim", "side_info_bits")}
            for i, (p, enc_mask) in enumerate(zip(pairs, masks)):
                enc = codec.encode(p["image"], enc_mask, codec_snr, cbr)
                rng = np.random.default_rng([seed, i, _snr_key(snr)])
                rx = numpy_channel(enc.symbols, channel, snr, rng)
                out = codec.decode(rx, enc.side_info, enc.shape, codec_snr)
                m = metrics.image_metrics(p["image"], out, p["mask"])
                for k in ("psnr", "roi_psnr", "ms_ssim"):
                    acc[k].append(m[k])
                acc["cbr_payload"].append(enc.cbr_payload)
                acc["cbr_total"].append(enc.cbr_total)
                acc["side_info_bits"].append(enc.side_info_bits)
                if progress:
                    progress()
            rois = [v for v in acc["roi_psnr"] if not math.isnan(v)]
            yield {"method": method, "channel": channel, "snr_db": float(snr), "cbr_target": float(cbr),
                   "cbr_payload": float(np.mean(acc["cbr_payload"])), "cbr_total": float(np.mean(acc["cbr_total"])),
                   "psnr": float(np.mean(acc["psnr"])), "roi_psnr": float(np.mean(rois)) if rois else float("nan"),
                   "ms_ssim": float(np.mean(acc["ms_ssim"])), "n_images": len(pairs),
                   "side_info_bits": float(np.mean(acc["side_info_bits"]))}
