"""Learned stage of the hybrid digital-analog codec (issue #13 part 2): the SNR-aware refinement
decoder of ``medjscc-hda``. Pure torch + numpy, no GNU Radio.

The transmitter is ``codec/hybrid.py`` unchanged (digital JPEG2000 base + the base's error as
linear analog symbols over a full-frame DCT, split fitted on the validation split). Its receiver
output ``base + LLSE(analog)`` still holds the base's coding artefacts where the analog layer had
no symbols for them, and the analog layer's noise shaped by its band gains. ``HdaRefiner`` is a
small U-Net that reads that output together with the decoded base and recalibrates its features
from the conditions of the frame (the RX's SNR, the SNR the TX laid the frame out for and the
CBR: channel-adaptive units, as the CAU of the pure-analog model) and adds a correction. It is
trained with an ROI-weighted loss (the lung ROI counts ``roi_weight`` times), so the ROI gets the
capacity; the mask itself stays at the transmitter (no extra side info).

It runs only where the frame decoded (side frame and base OK): a failed frame is shown and
reported as before, never "repaired" into something that looks decoded.

Weights: ``models/hda_refiner.pt`` (+ ``.sha256``), format ``gr-medjscc-hda`` v1, loaded with
``weights_only=True`` after the checksum.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checksums import write_sha256
from ..errors import InputError, MedJSCCError, WeightsError

CHECKPOINT_FORMAT = "gr-medjscc-hda"
CHECKPOINT_VERSION = 1
SHIPPED = "hda_refiner"   # models/hda_refiner.pt (the "hda_" prefix keeps it out of the codec model lists)
N_COND = 3   # RX SNR, design SNR, log2 CBR


@dataclass(frozen=True)
class RefinerConfig:
    width: int = 32        # channels at full resolution (x2, x4 below)
    mid_blocks: int = 4    # residual blocks at 1/4 resolution

    @classmethod
    def from_dict(cls, d: dict) -> "RefinerConfig":
        try:
            cfg = cls(int(d["width"]), int(d["mid_blocks"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsError(f"invalid refiner config {d!r}") from exc
        if cfg.width < 4 or cfg.mid_blocks < 0:
            raise WeightsError(f"invalid refiner config {d!r}")
        return cfg


def condition_vector(snr_rx_db, snr_design_db, cbr) -> torch.Tensor:
    """(B, 3) features about in [-1, 1]: SNRs over -10..30 dB, CBR over 1/64..1/4."""
    snr_rx = torch.as_tensor(snr_rx_db, dtype=torch.float32).reshape(-1)
    snr_d = torch.as_tensor(snr_design_db, dtype=torch.float32).reshape(-1)
    c = torch.as_tensor(cbr, dtype=torch.float32).reshape(-1)
    return torch.stack([(snr_rx - 10.0) / 20.0, (snr_d - 10.0) / 20.0, (torch.log2(c) + 4.0) / 2.0], dim=1)


class ConditionUnit(nn.Module):
    """Channel recalibration from pooled features and the frame's conditions (CAU with a
    condition vector instead of one SNR); an identity at initialisation."""

    def __init__(self, channels: int):
        super().__init__()
        hidden = max(16, channels // 2)
        self.fc1 = nn.Linear(channels + N_COND, hidden)
        self.fc2 = nn.Linear(hidden, channels)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x, cond):
        z = torch.cat([x.mean(dim=(2, 3)), cond.to(x.dtype)], dim=1)
        return x * (2.0 * torch.sigmoid(self.fc2(torch.relu(self.fc1(z)))))[:, :, None, None]


class _Res(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1)
        self.b = nn.Conv2d(c, c, 3, padding=1)
        self.cond = ConditionUnit(c)

    def forward(self, x, cond):
        return x + self.cond(self.b(torch.relu(self.a(x))), cond)


class HdaRefiner(nn.Module):
    """U-Net (3 scales) over [received, base, base-present plane] -> received + correction."""

    def __init__(self, cfg: RefinerConfig = RefinerConfig()):
        super().__init__()
        self.cfg = cfg
        c1, c2, c3 = cfg.width, 2 * cfg.width, 4 * cfg.width
        self.inp = nn.Conv2d(3, c1, 3, padding=1)
        self.e1 = _Res(c1)
        self.down1 = nn.Conv2d(c1, c2, 4, stride=2, padding=1)
        self.e2 = _Res(c2)
        self.down2 = nn.Conv2d(c2, c3, 4, stride=2, padding=1)
        self.mid = nn.ModuleList(_Res(c3) for _ in range(cfg.mid_blocks))
        self.up2 = nn.ConvTranspose2d(c3, c2, 4, stride=2, padding=1)
        self.f2 = nn.Conv2d(2 * c2, c2, 3, padding=1)
        self.d2 = _Res(c2)
        self.up1 = nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1)
        self.f1 = nn.Conv2d(2 * c1, c1, 3, padding=1)
        self.d1 = _Res(c1)
        self.out = nn.Conv2d(c1, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)   # starts as the identity: the LLSE output
        nn.init.zeros_(self.out.bias)

    def forward(self, received, base, has_base, cond):
        """``received``, ``base``: (B, 1, H, W) in [0, 1], H and W multiples of 4; ``has_base`` (B,)."""
        plane = has_base.to(received.dtype).reshape(-1, 1, 1, 1).expand_as(received)
        x1 = self.e1(torch.relu(self.inp(torch.cat([received, base, plane], dim=1))), cond)
        x2 = self.e2(torch.relu(self.down1(x1)), cond)
        x3 = torch.relu(self.down2(x2))
        for blk in self.mid:
            x3 = blk(x3, cond)
        y2 = self.d2(torch.relu(self.f2(torch.cat([torch.relu(self.up2(x3)), x2], dim=1))), cond)
        y1 = self.d1(torch.relu(self.f1(torch.cat([torch.relu(self.up1(y2)), x1], dim=1))), cond)
        return received + self.out(y1)


# ----------------------------------------------------------------------------- weights
def save_refiner(model: HdaRefiner, path, meta: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # fp16 on disk (half the size; the refiner's outputs move < 0.01 dB), float32 when loaded
    sd = {k: (v.half() if v.is_floating_point() else v).detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": asdict(model.cfg),
                "state_dict": sd, "meta": meta or {}}, path)
    write_sha256(path)
    return path


def refiner_path(name_or_path=SHIPPED) -> Path:
    s = str(name_or_path)
    if "/" in s or s.endswith(".pt"):
        return Path(s)
    from .weights import shipped_models_dir

    return shipped_models_dir() / f"{s}.pt"


def load_refiner(name_or_path=SHIPPED) -> "Refiner":
    from .weights import read_checkpoint

    path = refiner_path(name_or_path)
    ck = read_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, what="hybrid refiner",
                         remedy="train it with `python -m gnuradio.medjscc.codec.hda`")
    model = HdaRefiner(RefinerConfig.from_dict(ck.get("config") or {}))
    try:
        model.load_state_dict({k: v.float() for k, v in ck["state_dict"].items()})
    except (RuntimeError, KeyError) as exc:
        raise WeightsError(f"{path} does not match the refiner architecture: {exc}") from None
    model.eval()
    return Refiner(model, ck.get("meta") or {}, path)


class Refiner:
    """Inference wrapper: uint8 received image + float base -> uint8 refined image."""

    def __init__(self, model: HdaRefiner, meta: dict, path: Path | None = None):
        from ..checksums import sha256_path

        self.model, self.meta, self.path = model, meta, path
        # read_checkpoint has just verified the file against its side file: no second hash pass
        self.sha256 = "" if path is None else sha256_path(path).read_text().split()[0].lower()

    @torch.no_grad()
    def __call__(self, received: np.ndarray, base: np.ndarray, has_base: bool, snr_rx_db: float,
                 snr_design_db: float, cbr: float) -> np.ndarray:
        received = np.asarray(received)
        if received.ndim != 2 or np.shape(base) != received.shape:
            raise InputError(f"refiner: a 2-D image and a base of the same shape are expected, got "
                             f"{received.shape} and {np.shape(base)}")
        h, w = received.shape
        ph, pw = (-h) % 4, (-w) % 4
        to_t = lambda a: torch.from_numpy(np.pad(np.asarray(a, np.float32) / 255.0, ((0, ph), (0, pw)),  # noqa: E731
                                                 mode="reflect"))[None, None]
        out = self.model(to_t(received), to_t(base), torch.tensor([float(bool(has_base))]),
                         condition_vector([snr_rx_db], [snr_design_db], [cbr]))
        out = out[0, 0, :h, :w].numpy() * 255.0
        return np.clip(np.round(out), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- training
@dataclass
class HdaTrainConfig:
    steps: int = 6000
    batch: int = 16
    lr: float = 3e-4
    lr_min: float = 1e-5
    roi_weights: tuple = (1.0, 3.0)   # one model per weight, trained on the same batches
    width: int = 32
    mid_blocks: int = 4
    cbr_probs: tuple = (0.5, 0.25, 0.25)   # of the store's CBRs, in its order (first: the main one)
    mismatch_prob: float = 0.3        # share of frames whose TX over-estimated the SNR
    mismatch_max_db: float = 4.0      # by up to this much
    seed: int = 0
    # lesion-aware training (issue #15; codec/lesion.py): each step also sends lesion_batch nodule
    # pairs, present and absent image through the same frame layout and the same analog noise, and
    # adds lesion_weight x the signal-transfer loss over a disc lesion_window nodule radii wide.
    # lesion_root: the pair set (data.nodules layout); lesion_bases: its base streams
    # (codec/hda_data.py on lesion_root/train, the same --frames as the main bases)
    lesion_bases: str | None = None
    lesion_root: str | None = None
    lesion_batch: int = 0
    lesion_weight: float = 0.0
    lesion_window: float = 2.0

    def check(self) -> "HdaTrainConfig":
        if self.lesion_batch < 0 or (self.lesion_batch and not (
                self.lesion_bases and self.lesion_root and self.lesion_weight >= 0 and self.lesion_window > 0)):
            raise InputError("refiner training: lesion_batch needs lesion_bases, lesion_root, lesion_weight >= 0 and "
                             f"lesion_window > 0, got {self.lesion_bases!r}, {self.lesion_root!r}, "
                             f"{self.lesion_weight}, {self.lesion_window}")
        return self


def _sampler(store, tcfg: HdaTrainConfig, rng: np.random.Generator):
    """Endless (received, base, has_base, target, mask, snr_rx, snr_design, cbr) samples."""
    from .hda_data import hybrid_sample

    by_cbr: dict = {}
    for e in store.entries:
        by_cbr.setdefault(float(e["cbr"]), []).append(e)
    cbrs, p = _cbr_choice(store, tcfg)
    while True:
        cbr = cbrs[rng.choice(len(cbrs), p=p)]
        e = by_cbr[cbr][rng.integers(len(by_cbr[cbr]))]
        lay = e["layouts"][rng.integers(len(e["layouts"]))]
        snr_t, snr_d = _snrs(lay, tcfg, rng)
        image, mask = store.pair(e["image"])
        rx, base, has_base = hybrid_sample(image, mask, snr_d, snr_t, int(e["n_total"]), store.stream(lay), rng,
                                           store.frames)
        yield rx, base, has_base, image, mask, snr_t, snr_d, cbr


def _cbr_choice(store, tcfg: HdaTrainConfig):
    """(CBRs of the store, their probabilities), as ``_sampler`` draws them."""
    cbrs = [float(c) for c in store.index["cbrs"] if any(float(e["cbr"]) == float(c) for e in store.entries)]
    p = np.asarray(tcfg.cbr_probs[:len(cbrs)], float)
    p = p / p.sum() if p.size == len(cbrs) and p.sum() > 0 else np.full(len(cbrs), 1.0 / len(cbrs))
    return cbrs, p


def _snrs(lay: dict, tcfg: HdaTrainConfig, rng: np.random.Generator):
    """(true, design) SNR of a sample of layout ``lay``: in ``mismatch_prob`` of them the TX
    over-estimated the SNR by up to ``mismatch_max_db``."""
    snr_d = float(lay["snrs"][rng.integers(len(lay["snrs"]))])
    snr_t = snr_d + (float(rng.uniform(-tcfg.mismatch_max_db, 0.0)) if rng.random() < tcfg.mismatch_prob
                     else float(rng.uniform(-0.5, 0.5)))
    return snr_t, snr_d


def pair_sampler(store, pairs: list, tcfg: HdaTrainConfig, rng: np.random.Generator):
    """Endless nodule-pair samples: ((received, base, has_base) present, (...) absent, image present,
    image absent, mask, nodule window, snr_true, snr_design, cbr). Both images of a pair go through
    the same layout and the same analog noise draw, so their difference is what the hybrid and the
    refiner make of the nodule, not two noise draws."""
    from .hda_data import hybrid_sample

    by_key = {(e["image"], float(e["cbr"])): e for e in store.entries}
    cbrs, p = _cbr_choice(store, tcfg)
    while True:
        rec = pairs[rng.integers(len(pairs))]
        cbr = cbrs[rng.choice(len(cbrs), p=p)]
        try:
            ep, ea = by_key[(f"{rec['present']}.png", cbr)], by_key[(f"{rec['absent']}.png", cbr)]
        except KeyError:
            raise InputError(f"the lesion bases hold no streams of pair {rec['pair']} at CBR {cbr:g}: make them "
                             f"from the pair set's {rec['split']} folder with the same --cbrs") from None
        k = rng.integers(len(ep["layouts"]))
        lay_p, lay_a = ep["layouts"][k], ea["layouts"][k]   # the same layouts: they depend on size, CBR, SNR
        snr_t, snr_d = _snrs(lay_p, tcfg, rng)
        seed = int(rng.integers(2 ** 62))
        out = []
        for name, lay in ((rec["present"], lay_p), (rec["absent"], lay_a)):
            image, mask = store.pair(f"{name}.png")
            out.append((image, mask) + hybrid_sample(image, mask, snr_d, snr_t, int(ep["n_total"]), store.stream(lay),
                                                     np.random.default_rng(seed), store.frames))
        (xp, mask, rxp, bp, hbp), (xa, _, rxa, ba, hba) = out
        cy, cx = rec["nodule"]["centre_px"]
        yy, xx = np.mgrid[0:xp.shape[0], 0:xp.shape[1]]
        window = (yy - cy) ** 2 + (xx - cx) ** 2 <= (tcfg.lesion_window * rec["nodule"]["radius_px"]) ** 2
        yield (rxp, bp, hbp), (rxa, ba, hba), xp, xa, mask, window, snr_t, snr_d, cbr


class _SampleStream(torch.utils.data.IterableDataset):
    def __init__(self, base_dir, data_dir, tcfg: HdaTrainConfig):
        self.base_dir, self.data_dir, self.tcfg = base_dir, data_dir, tcfg

    def __iter__(self):
        from .hda_data import BaseStore

        info = torch.utils.data.get_worker_info()
        wid = 0 if info is None else info.id
        rng = np.random.default_rng([self.tcfg.seed, wid])
        store = BaseStore(self.base_dir, self.data_dir)
        for rx, base, has_base, image, mask, snr_t, snr_d, cbr in _sampler(store, self.tcfg, rng):
            m = np.zeros(image.shape, np.float32) if mask is None else mask.astype(np.float32)
            yield (torch.from_numpy(rx.astype(np.float32) / 255.0)[None],
                   torch.from_numpy(base.astype(np.float32) / 255.0)[None],
                   torch.tensor(float(has_base)), torch.from_numpy(image.astype(np.float32) / 255.0)[None],
                   torch.from_numpy(m)[None], torch.tensor(snr_t, dtype=torch.float32),
                   torch.tensor(snr_d, dtype=torch.float32), torch.tensor(cbr, dtype=torch.float32))


class _PairStream(torch.utils.data.IterableDataset):
    """``pair_sampler`` as tensors (present then absent along a leading axis of 2; no mask: the
    signal-transfer loss needs only the nodule's window)."""

    def __init__(self, tcfg: HdaTrainConfig):
        self.tcfg = tcfg

    def __iter__(self):
        from ..data.nodules import load_pairs
        from .hda_data import BaseStore

        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.tcfg.seed, 1000 + (0 if info is None else info.id)])
        store = BaseStore(self.tcfg.lesion_bases, Path(self.tcfg.lesion_root) / "train")
        pairs = load_pairs(self.tcfg.lesion_root, "train")
        f = lambda a: torch.from_numpy(np.asarray(a, np.float32) / 255.0)[None]   # noqa: E731
        for p_, a_, xp, xa, _, win, snr_t, snr_d, cbr in pair_sampler(store, pairs, self.tcfg, rng):
            yield (torch.stack([f(p_[0]), f(a_[0])]), torch.stack([f(p_[1]), f(a_[1])]),
                   torch.tensor([float(p_[2]), float(a_[2])]), torch.stack([f(xp), f(xa)]),
                   torch.from_numpy(win.astype(np.float32))[None],
                   torch.tensor(snr_t, dtype=torch.float32), torch.tensor(snr_d, dtype=torch.float32),
                   torch.tensor(cbr, dtype=torch.float32))


def train_refiners(base_dir, out_dir, tcfg: HdaTrainConfig = HdaTrainConfig(), data_dir=None, device: str = "cpu",
                   workers: int = 2, time_limit_s: float | None = None, log=print, init=None) -> list[Path]:
    """Train one refiner per ``tcfg.roi_weights`` on the same batches; write ``refiner_w<weight>.pt``
    and ``metrics.jsonl`` (per log step: loss, PSNR of the received image and of each refined one,
    on the training batches) to ``out_dir``. Stops early at ``time_limit_s``. ``init``: a refiner
    file every model starts from (its architecture wins over ``tcfg.width``)."""
    import json

    from .hda_data import BaseStore
    from .lesion import signal_transfer_loss

    # fail here, with the reason, rather than in every sample process
    tcfg.check()
    store = BaseStore(base_dir, data_dir)
    if not store.entries:
        raise InputError(f"{base_dir} holds no training images")
    store.pair(store.entries[0]["image"])
    pair_iter = None
    if tcfg.lesion_batch:
        from ..data.nodules import load_pairs

        lstore = BaseStore(tcfg.lesion_bases, Path(tcfg.lesion_root) / "train")
        if lstore.frames != store.frames:
            raise InputError(f"the lesion bases hold {lstore.frames} frames, the training bases {store.frames}")
        next(pair_sampler(lstore, load_pairs(tcfg.lesion_root, "train"), tcfg, np.random.default_rng(0)))
        pair_iter = iter(torch.utils.data.DataLoader(
            _PairStream(tcfg), batch_size=tcfg.lesion_batch, num_workers=max(0, workers // 2),
            persistent_workers=workers // 2 > 0, prefetch_factor=4 if workers // 2 > 0 else None))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tcfg.seed)
    start = None if init is None else load_refiner(init).model
    cfg = RefinerConfig(tcfg.width, tcfg.mid_blocks) if start is None else start.cfg
    models = [HdaRefiner(cfg).to(device) for _ in tcfg.roi_weights]
    if start is not None:
        for m in models:
            m.load_state_dict(start.state_dict())
    opts = [torch.optim.Adam(m.parameters(), lr=tcfg.lr) for m in models]
    loader = torch.utils.data.DataLoader(_SampleStream(base_dir, data_dir, tcfg), batch_size=tcfg.batch,
                                         num_workers=workers, persistent_workers=workers > 0,
                                         prefetch_factor=4 if workers > 0 else None)
    t0, step, acc = time.time(), 0, None
    metrics = open(out_dir / "metrics.jsonl", "w")

    def save(tag=""):
        paths = []
        for w, m in zip(tcfg.roi_weights, models):
            paths.append(save_refiner(m, out_dir / f"refiner_w{w:g}{tag}.pt",
                                      dict(roi_weight=w, steps=step, train=asdict(tcfg) | {"roi_weights": list(tcfg.roi_weights)})))
        return paths

    for batch in loader:
        rx, base, hb, target, mask, snr_t, snr_d, cbr = (t.to(device, non_blocking=True) for t in batch)
        cond = condition_vector(snr_t, snr_d, cbr).to(device)
        # cosine decay over the steps, or over the time limit where that comes first
        done = step / tcfg.steps if time_limit_s is None else max(step / tcfg.steps, (time.time() - t0) / time_limit_s)
        lr = tcfg.lr_min + 0.5 * (tcfg.lr - tcfg.lr_min) * (1 + math.cos(math.pi * min(1.0, done)))
        row = [float(((rx - target) ** 2).mean())]
        pair = None
        if pair_iter is not None:   # (k, 2, ...) -> present rows then absent rows
            prx, pbase, phb, px, pwin, pt, pd, pc = next(pair_iter)
            k = prx.shape[0]
            cat = lambda t: torch.cat([t[:, 0], t[:, 1]]).to(device)   # noqa: E731
            pcond = condition_vector(torch.cat([pt, pt]), torch.cat([pd, pd]), torch.cat([pc, pc])).to(device)
            pair = (cat(prx), cat(pbase), cat(phb), pcond, px[:, 0].to(device), px[:, 1].to(device), pwin.to(device))
        lesion_losses = []
        for w, m, opt in zip(tcfg.roi_weights, models, opts):
            for g in opt.param_groups:
                g["lr"] = lr
            wmap = 1.0 + (w - 1.0) * mask
            out = m(rx, base, hb, cond)
            loss = (wmap * (out - target) ** 2).sum() / wmap.sum()
            if pair is not None:
                o = m(pair[0], pair[1], pair[2], pair[3])
                sig = signal_transfer_loss(o[:k], o[k:], pair[4], pair[5], pair[6])
                loss = loss + tcfg.lesion_weight * sig
                lesion_losses.append(float(sig.detach()))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            row.append(float(((out.detach() - target) ** 2).mean()))
        acc = np.asarray(row) if acc is None else 0.98 * acc + 0.02 * np.asarray(row)
        step += 1
        if step % 200 == 0 or step == tcfg.steps:
            psnr = [round(-10 * math.log10(max(v, 1e-12)), 3) for v in acc]
            rec = dict(step=step, elapsed_s=round(time.time() - t0, 1), lr=lr, psnr_received=psnr[0],
                       psnr_refined={f"w{w:g}": p for w, p in zip(tcfg.roi_weights, psnr[1:])})
            if lesion_losses:   # this step's signal-transfer loss per model (0: the nodule carried whole)
                rec["signal_transfer"] = {f"w{w:g}": round(v, 4) for w, v in zip(tcfg.roi_weights, lesion_losses)}
            metrics.write(json.dumps(rec) + "\n")
            metrics.flush()
            log(json.dumps(rec))
        if step % 2000 == 0:
            save()
        if step >= tcfg.steps or (time_limit_s is not None and time.time() - t0 > time_limit_s):
            break
    metrics.close()
    return save()


def main(argv=None):
    import argparse
    import json

    ap = argparse.ArgumentParser(description="Train the hybrid codec's refinement decoder (medjscc-hda) from "
                                             "precomputed base streams (python -m gnuradio.medjscc.codec.hda_data).")
    ap.add_argument("--bases", required=True, help="folder written by codec.hda_data (index.json + streams.bin)")
    ap.add_argument("--data", default=None, help="image folder of those bases (default: the one in index.json)")
    ap.add_argument("--out", required=True, help="output folder (refiner_w<weight>.pt, metrics.jsonl)")
    ap.add_argument("--steps", type=int, default=HdaTrainConfig.steps)
    ap.add_argument("--batch", type=int, default=HdaTrainConfig.batch)
    ap.add_argument("--roi-weights", default="1,3", help="one model per ROI loss weight, same batches")
    ap.add_argument("--width", type=int, default=HdaTrainConfig.width)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=2, help="sample-generating processes")
    ap.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default=None, help="refiner file every model starts from (fine-tuning)")
    ap.add_argument("--lr", type=float, default=HdaTrainConfig.lr)
    ap.add_argument("--lesion-root", default=None, help="nodule pair set (data.nodules layout) for the lesion term")
    ap.add_argument("--lesion-bases", default=None,
                    help="its base streams (python -m gnuradio.medjscc.codec.hda_data --data <root>/train ...)")
    ap.add_argument("--lesion-batch", type=int, default=0, help="nodule pairs per step (0: no lesion term)")
    ap.add_argument("--lesion-weight", type=float, default=0.0, help="weight of the signal-transfer loss")
    ap.add_argument("--lesion-window", type=float, default=HdaTrainConfig.lesion_window,
                    help="disc around the nodule the loss covers, in nodule radii")
    a = ap.parse_args(argv)
    try:
        weights = tuple(float(w) for w in a.roi_weights.split(","))
    except ValueError as exc:
        raise InputError(f"--roi-weights: {exc}") from exc
    tcfg = HdaTrainConfig(steps=a.steps, batch=a.batch, lr=a.lr, roi_weights=weights, width=a.width, seed=a.seed,
                          lesion_bases=a.lesion_bases, lesion_root=a.lesion_root, lesion_batch=a.lesion_batch,
                          lesion_weight=a.lesion_weight, lesion_window=a.lesion_window)
    paths = train_refiners(a.bases, a.out, tcfg, a.data, a.device, a.workers, a.time_limit, init=a.init)
    print(json.dumps(dict(models=[str(p) for p in paths])))


if __name__ == "__main__":
    try:
        main()
    except MedJSCCError as exc:
        raise SystemExit(f"error: {exc}")
