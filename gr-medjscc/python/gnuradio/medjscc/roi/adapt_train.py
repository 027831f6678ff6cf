"""Training of the LiteMedSAM DRR read-out adapter (see ``adapt`` for what and why).

    medjscc roi-train --what litemedsam --limit 240 --out models/roi_litemedsam_drr.pt
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from .adapt import ADAPTER_ARCH, ADAPTER_PREFIX, FEATURE_POOL

log = logging.getLogger(__name__)


def _region_boxes(mask: np.ndarray, rng: np.random.Generator, margin: float, jitter: float, n_jitter: int):
    from .imageutil import box_of, regions

    h, w = mask.shape
    out = []
    for part in regions(mask, min_area=int(0.01 * h * w), max_regions=3):
        out.append(box_of(part, margin * max(h, w)))
        for _ in range(n_jitter):
            b = box_of(part, 0.0) + rng.uniform(-jitter, jitter, 4) * max(h, w)
            b = np.array([max(0, b[0]), max(0, b[1]), min(w - 1, b[2]), min(h - 1, b[3])], np.float32)
            if b[2] - b[0] > 8 and b[3] - b[1] > 8:
                out.append(b)
    return out


def collect_features(lm, split: str = "train", root=None, limit: int | None = None, seed: int = 0,
                     margin: float = 0.02, jitter: float = 0.03, n_jitter: int = 1):
    """Frozen LiteMedSAM features for (image, box) pairs of a split.

    Returns tensors: ``tokens`` (N, 256) single-mask token outputs, ``feats`` (N, 32, 128, 128)
    pooled upscaled embeddings (float16), ``targets`` (N, 128, 128) GT-inside-box fractions,
    ``inbox`` (N, 128, 128) bool.
    """
    import torch
    import torch.nn.functional as F

    from ..data import load_split
    from .imageutil import as_gray_float, box_mask

    ds = load_split(split, root=root, limit=limit)
    rng = np.random.default_rng(seed)
    tokens, feats, targets, inbox = [], [], [], []
    t0 = time.time()
    for i in range(len(ds)):
        item = ds[i]
        mask = np.asarray(item["mask"], bool)
        boxes = _region_boxes(mask, rng, margin, jitter, n_jitter)
        if not boxes:
            continue
        lm.embed(as_gray_float(item["image"]))
        tok, up = lm.decoder_features(np.stack(boxes))
        for k, b in enumerate(boxes):
            bm = box_mask(b, mask.shape)
            t = torch.from_numpy((mask & bm).astype(np.float32))[None, None]
            tokens.append(tok[k])
            feats.append(F.avg_pool2d(up[k:k + 1], FEATURE_POOL)[0].half())
            targets.append(F.avg_pool2d(t, FEATURE_POOL)[0, 0])
            inbox.append(F.avg_pool2d(torch.from_numpy(bm.astype(np.float32))[None, None], FEATURE_POOL)[0, 0] > 0.5)
        if (i + 1) % 20 == 0:
            log.info("LiteMedSAM features: %d/%d images (%.0fs)", i + 1, len(ds), time.time() - t0)
    if not tokens:
        raise InputError(f"split {split!r} has no lung masks to adapt on")
    return torch.stack(tokens), torch.stack(feats), torch.stack(targets), torch.stack(inbox)


def train_adapter(out: str | Path, root=None, limit: int | None = 240, val_limit: int | None = None,
                  steps: int = 600, batch: int = 16, lr: float = 3e-4, seed: int = 0, threads: int = 1) -> dict:
    """Fine-tune ``output_hypernetworks_mlps.0`` on cached features; keep the best val Dice."""
    import copy

    import torch
    import torch.nn.functional as F

    from .coarse import write_sha256
    from .litemedsam import LiteMedSAM

    torch.set_num_threads(max(1, int(threads)))
    torch.manual_seed(seed)
    t0 = time.time()
    lm = LiteMedSAM(adapter=None)
    tr = collect_features(lm, "train", root, limit, seed)
    va = collect_features(lm, "val", root, val_limit, seed + 1, n_jitter=0)
    log.info("adapter data: %d train / %d val (image, box) pairs in %.0fs", len(tr[0]), len(va[0]), time.time() - t0)
    mlp = copy.deepcopy(lm.net.mask_decoder.output_hypernetworks_mlps[0]).train()
    for p in mlp.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(mlp.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def logits_of(tok, feat):
        return torch.einsum("nc,nchw->nhw", mlp(tok), feat.float())

    def val_dice():
        with torch.no_grad():
            d = []
            for s in range(0, len(va[0]), 32):
                lo = logits_of(va[0][s:s + 32], va[1][s:s + 32])
                p = (lo > 0) & va[3][s:s + 32]
                t = va[2][s:s + 32] > 0.5
                inter = (p & t).sum(dim=(1, 2)).float()
                d.append(2 * inter / (p.sum(dim=(1, 2)) + t.sum(dim=(1, 2))).clamp(min=1))
            return float(torch.cat(d).mean())

    start = val_dice()
    best = (start, copy.deepcopy(mlp.state_dict()), 0)
    gen = torch.Generator().manual_seed(seed)
    n = len(tr[0])
    for step in range(1, steps + 1):
        idx = torch.randint(0, n, (batch,), generator=gen)
        lo = logits_of(tr[0][idx], tr[1][idx])
        box = tr[3][idx]
        tgt = tr[2][idx]
        loss = F.binary_cross_entropy_with_logits(lo[box], tgt[box])
        p = torch.sigmoid(lo) * box
        loss = loss + (1 - (2 * (p * tgt).sum() + 1) / (p.sum() + tgt.sum() + 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps:
            d = val_dice()
            log.info("adapter step %d/%d loss %.4f val region Dice %.4f", step, steps, float(loss.detach()), d)
            if d > best[0]:
                best = (d, copy.deepcopy(mlp.state_dict()), step)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {ADAPTER_PREFIX + k: v.detach().clone() for k, v in best[1].items()}
    meta = {"train_pairs": int(n), "val_pairs": int(len(va[0])), "steps": int(steps), "best_step": int(best[2]),
            "val_region_dice_stock": float(start), "val_region_dice": float(best[0]), "seed": int(seed),
            "seconds": float(time.time() - t0)}
    torch.save({"arch": ADAPTER_ARCH, "state_dict": state, "meta": meta}, out)
    write_sha256(out)
    log.info("wrote %s: val region Dice %.4f (stock %.4f)", out, best[0], start)
    return {**meta, "path": str(out)}
