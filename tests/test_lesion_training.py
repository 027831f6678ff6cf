"""Lesion-aware training (codec.lesion): nodule-pair crops keep the nodule whole, the
signal-transfer loss measures how much of the nodule's signal a reconstruction loses, and a tiny
training run with pairs goes through."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from gnuradio.medjscc.codec.lesion import LesionBatches, signal_transfer_loss

R = 5.0


def _fake_set(root, n=3, size=256):
    """A nodule-set folder in data.nodules' layout: absent = smooth background + noise, present =
    the same + a disc of radius R at the stated centre."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    recs = []
    for k in range(n):
        names = {s: f"nod_train_{k:05d}_{s}" for s in ("present", "absent")}
        cy, cx = rng.uniform(20, size - 20, 2)
        absent = 100 + 40 * np.sin(xx / 30 + k) + rng.normal(0, 2, (size, size))
        present = absent + 30 * ((yy - cy) ** 2 + (xx - cx) ** 2 <= R ** 2)
        for sub in ("images", "masks"):
            (root / "train" / sub).mkdir(parents=True, exist_ok=True)
        for s, img in (("present", present), ("absent", absent)):
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "train" / "images" / f"{names[s]}.png")
            Image.fromarray(np.full((size, size), 255, np.uint8)).save(root / "train" / "masks" / f"{names[s]}.png")
        recs.append({"split": "train", "pair": k, "nodule": {"centre_px": [cy, cx], "radius_px": R}, **names})
    (root / "nodules.json").write_text(json.dumps({"pairs": recs}))
    return root


def test_crops_hold_the_whole_nodule_window(tmp_path):
    lb = LesionBatches(_fake_set(tmp_path), crop=64, rng=np.random.default_rng(1), window=2.0)
    assert len(lb) == 3
    xp, xa, m, w = lb.sample(16)
    assert xp.shape == xa.shape == m.shape == w.shape == (16, 1, 64, 64)
    diff = (xp - xa).abs()
    inside = (diff * w).sum(dim=(1, 2, 3))
    outside = (diff * (1 - w)).sum(dim=(1, 2, 3))
    assert torch.all(inside > 0) and torch.all(outside == 0)      # the nodule is inside its window
    area = w.sum(dim=(1, 2, 3))
    assert torch.allclose(area, torch.full_like(area, np.pi * (2 * R) ** 2), rtol=0.1)


def test_signal_transfer_loss_is_the_lost_share_of_the_nodule_signal(tmp_path):
    lb = LesionBatches(_fake_set(tmp_path), crop=64, rng=np.random.default_rng(2))
    xp, xa, _, w = lb.sample(4)
    assert float(signal_transfer_loss(xp, xa, xp, xa, w)) == pytest.approx(0.0, abs=1e-9)
    assert float(signal_transfer_loss(xa, xa, xp, xa, w)) == pytest.approx(1.0)           # nodule dropped
    half = xa + 0.5 * (xp - xa)
    assert float(signal_transfer_loss(half, xa, xp, xa, w)) == pytest.approx(0.25, rel=1e-4)


def test_training_with_nodule_pairs_runs_and_checks_its_options(tmp_path):
    import yaml

    from gnuradio.medjscc.codec.train import TrainConfig, train
    from gnuradio.medjscc.errors import MedJSCCError
    from test_codec import ABLATIONS, TINY

    root = _fake_set(tmp_path / "nod")
    cfg = {"name": "tiny_lesion", "model": {**{k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items()},
                                            **ABLATIONS["medjscc"]},
           "train": {"steps": 2, "batch_size": 2, "crop": 64, "val_every": 2, "val_images": 2,
                     "checkpoint_every": 2, "seed": 3, "lesion_pairs": 3, "lesion_batch": 2,
                     "lesion_weight": 0.1, "lesion_root": str(root)}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = train(path, runs_dir=tmp_path / "runs", out_path=tmp_path / "tiny.pt", synthetic=True, progress=False)
    assert out.is_file()
    with pytest.raises(MedJSCCError, match="lesion_batch"):
        TrainConfig.from_dict({"lesion_batch": 2, "lesion_pairs": 0})


def test_absent_images_get_the_present_images_channel_draw():
    from gnuradio.medjscc.codec.channel import apply_channel
    from gnuradio.medjscc.codec.train import _paired_channel

    z = torch.randn(7, 50, dtype=torch.complex64)          # 3 plain rows, 2 pairs
    y = _paired_channel(lambda z, s: apply_channel(z, "awgn", s), 3, 2)(z, torch.full((7,), 5.0))
    assert torch.allclose(y[5:] - z[5:], y[3:5] - z[3:5])  # the same noise for both images of a pair
    assert not torch.allclose(y[1] - z[1], y[0] - z[0])    # plain rows: independent draws
