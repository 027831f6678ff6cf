"""Coarse lung segmenter: a tiny U-Net trained on the DRR lung masks, used to self-prompt.

It runs at low resolution (``size`` x ``size``, 96 by default) on a min-max normalised image and
returns a lung probability map at the input size. ``auto`` turns its connected regions into box
prompts for LiteMedSAM / SAM 2.

Training (a few minutes on one CPU thread)::

    medjscc roi-train --epochs 30 --size 96 --out models/roi_coarse.pt

writes ``models/roi_coarse.pt`` and ``models/roi_coarse.pt.sha256``. The checkpoint is a plain
dict (``state_dict``, ``arch``, ``meta``) loadable with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from ..errors import InputError, WeightsError
from ..checksums import write_sha256  # noqa: F401  (roi.adapt saves its weights through it)
from ..checksums import verify_sha256 as _verify_sha256

log = logging.getLogger(__name__)

DEFAULT_NAME = "roi_coarse.pt"
ARCH_NAME = "medjscc-roi-tiny-unet-v1"


def _torch():
    import torch

    return torch


def build_unet(base: int = 16, depth: int = 3):
    """Tiny U-Net: ``depth`` 2x downsamplings, channels base * 2**level, 1 output logit."""
    torch = _torch()
    nn = torch.nn

    def block(cin, cout):
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class TinyUNet(nn.Module):
        def __init__(self):
            super().__init__()
            chans = [base * 2 ** i for i in range(depth + 1)]
            self.down = nn.ModuleList([block(1, chans[0])] + [block(chans[i], chans[i + 1]) for i in range(depth)])
            self.up = nn.ModuleList([nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in range(depth)])
            self.dec = nn.ModuleList([block(2 * chans[i], chans[i]) for i in range(depth)])
            self.head = nn.Conv2d(chans[0], 1, 1)

        def forward(self, x):
            skips = []
            for i, blk in enumerate(self.down):
                x = blk(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            x = skips.pop()
            for i in reversed(range(depth)):
                x = self.dec[i](torch.cat([self.up[i](x), skips.pop()], dim=1))
            return self.head(x)

    return TinyUNet()


def to_input(image01: np.ndarray, size: int):
    """float [0, 1] HxW -> normalised (1, 1, size, size) tensor (area resampling)."""
    torch = _torch()
    x = torch.from_numpy(np.ascontiguousarray(image01, dtype=np.float32))[None, None]
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="area") if x.shape[-2:] != (size, size) else x
    return (x - 0.5) / 0.25


def verify_sha256(path: Path) -> None:
    _verify_sha256(path, "regenerate the weights with `medjscc roi-train`")


class CoarseLungModel:
    """Loaded coarse model: ``prob(image01) -> float HxW`` lung probability."""

    def __init__(self, net, size: int, meta: dict | None = None):
        self.net = net.eval()
        self.size = int(size)
        self.meta = dict(meta or {})

    def prob(self, image01: np.ndarray) -> np.ndarray:
        torch = _torch()
        h, w = image01.shape
        with torch.inference_mode():
            logits = self.net(to_input(image01, self.size))
            logits = torch.nn.functional.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits)[0, 0].numpy()


def default_path() -> Path:
    from ..paths import models_dir

    return models_dir() / DEFAULT_NAME


def load_coarse(path: str | Path | None = None, verify: bool = True) -> CoarseLungModel:
    """Load the coarse model (default ``models/roi_coarse.pt``), checking its SHA-256."""
    torch = _torch()
    p = Path(path) if path is not None else default_path()
    if not p.is_file():
        raise WeightsError(f"coarse ROI model {p} not found; train it with `medjscc roi-train --out {p}`")
    if verify:
        verify_sha256(p)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        raise WeightsError(f"{p} is not a weights-only PyTorch checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("arch") != ARCH_NAME or "state_dict" not in ckpt:
        raise WeightsError(f"{p} is not a coarse ROI model checkpoint (expected arch {ARCH_NAME!r}); "
                           "train one with `medjscc roi-train`")
    cfg = ckpt.get("config", {})
    net = build_unet(base=int(cfg.get("base", 16)), depth=int(cfg.get("depth", 3)))
    try:
        net.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as e:
        raise WeightsError(f"{p}: weights do not fit the coarse U-Net ({str(e).splitlines()[0]})") from None
    return CoarseLungModel(net, int(cfg.get("size", 96)), ckpt.get("meta"))


# ----------------------------------------------------------------------------------------------
# training
def _load_arrays(split: str, root, limit, size: int):
    from ..data import load_split

    from .imageutil import as_gray_float

    torch = _torch()
    ds = load_split(split, root=root, limit=limit)
    xs, ys = [], []
    for i in range(len(ds)):
        item = ds[i]
        if item.get("mask") is None:
            raise InputError(f"{item.get('source_path', item.get('name'))}: no lung mask for training")
        xs.append(to_input(as_gray_float(item["image"]), size)[0])
        m = torch.from_numpy(np.asarray(item["mask"], np.float32))[None, None]
        ys.append(torch.nn.functional.interpolate(m, size=(size, size), mode="area")[0])
    if not xs:
        raise InputError(f"split {split!r} is empty")
    return torch.stack(xs), torch.stack(ys)


def _augment(x, y, gen):
    """Random flips, small affine warps and intensity changes (same warp on image and mask)."""
    torch = _torch()
    F = torch.nn.functional
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    y = torch.where(flip[:, None, None, None], y.flip(-1), y)
    ang = (torch.rand(n, generator=gen) - 0.5) * math.radians(16)
    scale = 1 + (torch.rand(n, generator=gen) - 0.5) * 0.25
    shift = (torch.rand(n, 2, generator=gen) - 0.5) * 0.2
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    bg = x.amin(dim=(1, 2, 3), keepdim=True)
    x = F.grid_sample(x - bg, grid, align_corners=False, padding_mode="zeros") + bg
    y = F.grid_sample(y, grid, align_corners=False, padding_mode="zeros")
    # contrast / brightness / gamma-like changes and noise, on the normalised scale
    x01 = (x * 0.25 + 0.5).clamp(0, 1)
    gamma = torch.exp((torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.8)
    x01 = x01 ** gamma
    x01 = x01 * (0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=gen)) + 0.1 * (torch.rand(n, 1, 1, 1, generator=gen) - 0.5)
    x01 = x01 + 0.02 * torch.randn(x.shape, generator=gen)
    return (x01 - 0.5) / 0.25, y


def _soft_dice_loss(logits, y):
    p = logits.sigmoid()
    inter = (p * y).sum(dim=(1, 2, 3))
    return (1 - (2 * inter + 1) / (p.sum(dim=(1, 2, 3)) + y.sum(dim=(1, 2, 3)) + 1)).mean()


def train_coarse(out: str | Path, root=None, epochs: int = 30, size: int = 96, base: int = 16, depth: int = 3,
                 batch: int = 16, lr: float = 3e-3, seed: int = 0, limit: int | None = None,
                 threads: int = 1, log_every: int = 1) -> dict:
    """Train on the DRR train split, keep the best val-Dice weights, write ``out`` + ``.sha256``."""
    torch = _torch()
    torch.set_num_threads(max(1, int(threads)))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    xtr, ytr = _load_arrays("train", root, limit, size)
    xva, yva = _load_arrays("val", root, None, size)
    log.info("coarse ROI training: %d train / %d val images at %dx%d", len(xtr), len(xva), size, size)
    net = build_unet(base, depth)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(xtr) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    bce = torch.nn.BCEWithLogitsLoss()
    best = (-1.0, None, -1)
    history = []
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * batch:(s + 1) * batch]
            xb, yb = _augment(xtr[idx], ytr[idx], gen)
            logits = net(xb)
            loss = bce(logits, yb) + _soft_dice_loss(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        net.eval()
        with torch.inference_mode():
            pv = net(xva).sigmoid() > 0.5
            tv = yva > 0.5
            inter = (pv & tv).sum(dim=(1, 2, 3)).float()
            d = (2 * inter / (pv.sum(dim=(1, 2, 3)) + tv.sum(dim=(1, 2, 3))).clamp(min=1)).mean().item()
        history.append({"epoch": epoch + 1, "loss": total / len(xtr), "val_dice": d})
        if (epoch + 1) % log_every == 0:
            log.info("epoch %d/%d loss %.4f val Dice(%dpx) %.4f  %.0fs", epoch + 1, epochs,
                     total / len(xtr), size, d, time.time() - t0)
        if d > best[0]:
            best = (d, {k: v.detach().clone() for k, v in net.state_dict().items()}, epoch + 1)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"train_images": int(len(xtr)), "val_images": int(len(xva)), "epochs": int(epochs),
            "best_epoch": int(best[2]), "val_dice_lowres": float(best[0]), "seed": int(seed),
            "seconds": float(time.time() - t0)}
    torch.save({"arch": ARCH_NAME, "config": {"size": size, "base": base, "depth": depth},
                "state_dict": best[1], "meta": meta}, out)
    write_sha256(out)
    n_params = sum(p.numel() for p in net.parameters())
    log.info("wrote %s (%d parameters, %.2f MB), best val Dice %.4f at epoch %d",
             out, n_params, out.stat().st_size / 1e6, best[0], best[2])
    return {**meta, "path": str(out), "parameters": int(n_params), "history": history}
