"""SAM 2 / SAM 2.1 / MedSAM-2 through the ``sam2`` package (``build_sam2`` + ``SAM2ImagePredictor``).

MedSAM-2 checkpoints are SAM 2.1 hiera-tiny fine-tunes and load through the same path, so the
default config is ``configs/sam2.1/sam2.1_hiera_t.yaml``. Weights cannot be downloaded here:
pass ``--sam2-checkpoint PATH`` (e.g. ``sam2.1_hiera_tiny.pt`` or ``MedSAM2_latest.pt``) and,
for other model sizes, ``--sam2-config NAME`` (``hiera_t``/``hiera_s``/``hiera_b+``/``hiera_l``,
``sam2.1_hiera_s``, a packaged config path such as ``configs/sam2/sam2_hiera_s.yaml``, or a YAML
file). ``checkpoint=None`` builds the model with random weights (tests only).

The checkpoint is read with ``torch.load(weights_only=True)`` (SAM 2 format ``{"model": state}``
or a bare state dict) and loaded strictly; a missing file or one that does not fit the config
raises ``WeightsError`` naming the file and what to do.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InputError, WeightsError

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
_SIZES = {"t": "t", "tiny": "t", "s": "s", "small": "s", "b+": "b+", "base_plus": "b+", "base+": "b+",
          "l": "l", "large": "l"}
# the same post-processing overrides build_sam2(apply_postprocessing=True) uses
_POSTPROCESSING = {
    "dynamic_multimask_via_stability": True,
    "dynamic_multimask_stability_delta": 0.05,
    "dynamic_multimask_stability_thresh": 0.98,
}


def resolve_config(name: str | None) -> tuple[str, Path | None]:
    """Config name -> (packaged config name, None) or (name, YAML file path)."""
    if not name:
        return DEFAULT_CONFIG, None
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return str(p), p
    import sam2

    pkg = Path(sam2.__path__[0])
    n = name.strip()
    base = n[:-5] if n.endswith(".yaml") else n
    candidates = []
    for prefix in ("sam2.1_", "sam2_"):
        if base.startswith(prefix + "hiera_"):
            folder = "sam2.1" if prefix == "sam2.1_" else "sam2"
            candidates.append(f"configs/{folder}/{base}.yaml")
    if base.startswith("hiera_") and base[6:] in _SIZES:
        candidates.append(f"configs/sam2.1/sam2.1_hiera_{_SIZES[base[6:]]}.yaml")
    candidates += [f"configs/{n}", f"configs/sam2.1/{n}", f"configs/sam2/{n}", n]
    for c in candidates:
        c = c if c.endswith(".yaml") else c + ".yaml"
        if (pkg / c).is_file():
            return c, None
    known = sorted(str(q.relative_to(pkg)) for q in (pkg / "configs").glob("sam2*/*.yaml"))
    raise InputError(f"--sam2-config {name!r} is neither a YAML file nor a config of the sam2 package "
                     f"(known: {', '.join(known)})")


def _build(config: str, yaml_path: Path | None, device: str):
    from sam2.build_sam import build_sam2

    if yaml_path is None:
        return build_sam2(config, ckpt_path=None, device=device, mode="eval")
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(yaml_path)
    if "model" not in cfg:
        raise InputError(f"SAM 2 config {yaml_path} has no 'model' section")
    extra = OmegaConf.create({"model": {"sam_mask_decoder_extra_args": dict(_POSTPROCESSING)}})
    cfg = OmegaConf.merge(cfg, extra)
    OmegaConf.resolve(cfg)
    return instantiate(cfg.model, _recursive_=True).to(device).eval()


def load_sam2_state(path: Path) -> dict:
    import torch

    if not path.is_file():
        raise WeightsError(f"SAM 2 checkpoint {path} not found; download a SAM 2.1 or MedSAM-2 checkpoint "
                           "(e.g. sam2.1_hiera_tiny.pt, MedSAM2_latest.pt) and pass it with --sam2-checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{path} is not a weights-only PyTorch checkpoint ({type(e).__name__}); "
                           "pass a SAM 2 .pt file with --sam2-checkpoint") from None
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state or not all(hasattr(v, "shape") for v in state.values()):
        raise WeightsError(f"{path} holds no SAM 2 state dict (expected {{'model': state_dict}})")
    return state


class Sam2Model:
    """SAM 2 image predictor with best-of-multimask selection per prompt."""

    def __init__(self, checkpoint: str | Path | None = None, config: str | None = None, device: str = "cpu"):
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        cfg_name, yaml_path = resolve_config(config)
        state = load_sam2_state(Path(checkpoint)) if checkpoint else None
        model = _build(cfg_name, yaml_path, device)
        if state is not None:
            try:
                missing, unexpected = model.load_state_dict(state, strict=False)
            except RuntimeError as e:
                lines = [ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln]
                raise WeightsError(f"{checkpoint} does not fit SAM 2 config {cfg_name} "
                                   f"({lines[0] if lines else 'shape mismatch'}); pass the config the "
                                   "checkpoint was trained with via --sam2-config (MedSAM-2: sam2.1_hiera_t)") from None
            if missing or unexpected:
                raise WeightsError(f"{checkpoint} does not fit SAM 2 config {cfg_name}: {len(missing)} missing "
                                   f"and {len(unexpected)} unexpected tensors (e.g. "
                                   f"{(list(missing) + list(unexpected))[0]}); pass the matching --sam2-config")
        else:
            log.warning("SAM 2 built with random weights (no checkpoint): masks are meaningless")
        self.model = model
        self.config = cfg_name
        self.checkpoint = str(checkpoint) if checkpoint else None
        self.predictor = SAM2ImagePredictor(model)
        self._shape = None
        self._key = None

    def embed(self, image01: np.ndarray) -> None:
        import hashlib

        import torch

        rgb = np.repeat((image01 * 255).round().astype(np.uint8)[..., None], 3, axis=2)
        key = hashlib.sha1(rgb.tobytes()).hexdigest() + str(rgb.shape)
        if key == self._key:   # same image again (other prompts): reuse the embedding
            return
        with torch.inference_mode():
            self.predictor.set_image(rgb)
        self._shape, self._key = image01.shape, key

    def predict(self, box: np.ndarray | None, points: np.ndarray, return_logits: bool = False) -> tuple[np.ndarray, float]:
        """One prompt (a box and/or positive points) -> (best mask bool HxW, or its logits, and its
        predicted IoU): the best of SAM 2's three multimask outputs by predicted IoU."""
        import torch

        kw = {}
        if box is not None:
            kw["box"] = np.asarray(box, np.float32).reshape(4)
        if len(points):
            kw["point_coords"] = np.asarray(points, np.float32).reshape(-1, 2)
            kw["point_labels"] = np.ones(len(points), np.int32)
        with torch.inference_mode():
            masks, scores, _ = self.predictor.predict(multimask_output=True, return_logits=True, **kw)
        best = int(np.argmax(scores))
        m = np.asarray(masks[best], np.float32)
        return (m if return_logits else m > 0), float(scores[best])

    def predict_boxes(self, boxes: np.ndarray, return_logits: bool = False) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        out = [self.predict(b, np.zeros((0, 2), np.float32), return_logits) for b in boxes]
        if not out:
            return np.zeros((0, *self._shape), np.float32 if return_logits else bool), np.zeros(0, np.float32)
        return np.stack([m for m, _ in out]), np.array([s for _, s in out], np.float32)
