"""DRR adaptation of LiteMedSAM's mask read-out (a 0.14 M-parameter delta, encoder untouched).

Why: our ground truth is the *projected* lung (every ray that crosses lung tissue, including
lung behind the heart and the diaphragm domes), while LiteMedSAM was trained on the visible
lung fields of real radiographs. With ground-truth boxes the stock model reaches Dice ~0.81-0.86
on the DRRs, mainly missing retro-cardiac lung. A linear read-out of LiteMedSAM's own upscaled
mask features already separates projected lung well, so we fine-tune only the hypernetwork MLP
of the single-mask output token (``mask_decoder.output_hypernetworks_mlps.0``) on the DRR train
split, with the image encoder, prompt encoder, transformer and upsampler frozen. The features
are computed once per (image, box) and cached, so training takes minutes on one CPU thread.

Training lives in ``adapt_train`` (it needs the LiteMedSAM model, which imports this module to
load the result). The result is a small file ``models/roi_litemedsam_drr.pt`` (+ ``.sha256``) holding only those
tensors; ``LiteMedSAM(adapter=...)`` applies it on top of the bundled checkpoint, which is never
copied. Command::

    medjscc roi-train --what litemedsam --limit 240 --out models/roi_litemedsam_drr.pt
"""
from __future__ import annotations

from pathlib import Path

from ..errors import WeightsError

ADAPTER_ARCH = "medjscc-litemedsam-readout-v1"
ADAPTER_PREFIX = "mask_decoder.output_hypernetworks_mlps.0."
DEFAULT_NAME = "roi_litemedsam_drr.pt"
FEATURE_POOL = 2   # train on 128x128 pooled features (the read-out is linear, pooling commutes)


def default_path() -> Path:
    from ..paths import models_dir

    return models_dir() / DEFAULT_NAME


def load_adapter_state(path: str | Path) -> dict:
    import torch

    from .coarse import verify_sha256

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"LiteMedSAM DRR adapter {p} not found; train it with "
                           f"`medjscc roi-train --what litemedsam --out {p}` or pass --litemedsam-adapter none")
    verify_sha256(p)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{p} is not a weights-only PyTorch checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("arch") != ADAPTER_ARCH or "state_dict" not in ckpt:
        raise WeightsError(f"{p} is not a LiteMedSAM read-out adapter (expected arch {ADAPTER_ARCH!r})")
    state = ckpt["state_dict"]
    if not state or not all(k.startswith(ADAPTER_PREFIX) for k in state):
        raise WeightsError(f"{p}: adapter tensors must all live under {ADAPTER_PREFIX}")
    return state
