"""Codec weights on disk: shipped model names, the checkpoint format, checked loading and saving.

Apart from ``api`` so that training (``train``) reads and writes weights without importing the
codec API that itself reads training configs (no import cycle).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..checksums import verify_sha256, write_sha256
from ..errors import MedJSCCError, WeightsError
from .models import JSCCModel, ModelConfig, build_model

MODEL_NAMES = ("medjscc", "ntscc", "adjscc", "deepjscc")
CHECKPOINT_FORMAT = "gr-medjscc-codec"
CHECKPOINT_VERSION = 1


def shipped_models_dir() -> Path:
    from .. import paths

    try:
        return paths.models_dir()
    except FileNotFoundError as e:
        raise WeightsError(str(e)) from None


def resolve_weights(name_or_path) -> Path:
    s = str(name_or_path)
    if s in MODEL_NAMES or ("/" not in s and not s.endswith(".pt")):
        folder = shipped_models_dir()
        path = folder / f"{s}.pt"
        if not path.is_file():
            shipped = sorted(p.stem for p in folder.glob("*.pt") if not p.stem.startswith(("roi_", "hda_")))
            raise WeightsError(f"unknown model {s!r}: shipped codec models in {folder} are "
                               f"{', '.join(shipped) or 'none'}; or pass the path of a .pt file")
        return path
    return Path(s)


def read_checkpoint(path: Path, fmt: str = CHECKPOINT_FORMAT, version: int = CHECKPOINT_VERSION,
                    what: str = "codec", remedy: str = "retrain with `medjscc train`") -> dict:
    """Load a weights file after verifying its SHA-256 (``<file>.sha256``); ``fmt`` / ``version``:
    what its ``format`` / ``version`` keys must say (``what`` names it in the errors)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{what} weights file not found: {path} (restore models/ from git, or {remedy})")
    verify_sha256(path, f"restore it from git (git checkout models/) or {remedy}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise WeightsError(f"cannot load weights {path}: {e}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise WeightsError(f"{path} is not a gr-medjscc {what} checkpoint")
    if int(ckpt.get("version", -1)) != version:
        raise WeightsError(f"{path}: unsupported checkpoint version {ckpt.get('version')}")
    return ckpt


def save_weights(model: JSCCModel, path, meta: dict | None = None, fp16: bool = False) -> Path:
    """Write {format, version, config, state_dict, meta} and ``<file>.sha256``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: (v.half() if fp16 and v.is_floating_point() else v).detach().cpu().clone()
          for k, v in model.state_dict().items()}
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "config": model.cfg.to_dict(), "state_dict": sd, "meta": meta or {}}, path)
    write_sha256(path)
    return path


def model_from_checkpoint(ckpt: dict, source="checkpoint") -> JSCCModel:
    try:
        cfg = ModelConfig.from_dict(ckpt["config"])
    except (MedJSCCError, KeyError, TypeError) as e:
        raise WeightsError(f"{source}: invalid model config: {e}") from None
    model = build_model(cfg)
    sd = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    wrong = sorted(k for k in set(own) & set(sd) if own[k].shape != sd[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(f"{label}: {', '.join(keys[:3])}{'...' if len(keys) > 3 else ''}"
                           for label, keys in (("missing", missing), ("unexpected", unexpected),
                                               ("shape mismatch", wrong)) if keys)
        raise WeightsError(f"{source} does not match the architecture its config describes ({detail})")
    model.load_state_dict(sd)
    return model
