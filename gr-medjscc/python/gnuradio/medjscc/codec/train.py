"""Training loop: ``medjscc train --config models/configs/<name>.yaml``.

Seeded and resumable (``runs/<name>/last.pt`` holds model, optimiser, step and RNG states);
the final weights are exported to ``models/<name>.pt`` with a ``.sha256`` next to them.
Each step: random crops of DRR training images, SNR ~ U[snr_db], payload CBR log-uniform in
``payload_cbr``, AWGN or (with ``rayleigh_fraction``) Rayleigh block fading with perfect CSI,
loss = ROI-weighted distortion + ``rate_lambda`` x estimated bits per pixel (hyperprior models).
The distortion is the batch-mean MSE (``loss: mse``) or balanced across samples (``loss:
log_mse``, see ``distortion_loss``).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import known_fields
from ..errors import MedJSCCError
from .channel import CSI_MIX, apply_channel, csi_link_channel
from .lesion import LesionBatches, signal_transfer_loss
from .models import DOWNSCALE, JSCCModel, ModelConfig, build_model

log = logging.getLogger(__name__)


TRAIN_CHANNELS = ("awgn_rayleigh", "csi_link")


@dataclass
class TrainConfig:
    seed: int = 1
    steps: int = 3000
    batch_size: int = 8
    crop: int = 128
    lr: float = 1e-3
    lr_min: float = 2e-5
    snr_db: tuple = (-5.0, 25.0)
    payload_cbr: tuple = (1.0 / 96.0, 1.0 / 8.0)
    roi_distortion_weight: float = 1.0
    rate_lambda: float = 0.002
    rayleigh_fraction: float = 0.2
    val_every: int = 500
    val_images: int = 16
    checkpoint_every: int = 250
    init_from: str | None = None      # warm start: model name/path whose matching tensors are copied
    # ROI allocation weight while training (None: model.roi_rate_weight). The shipped weights
    # carry the model's value, the one used at inference (chosen on the validation split).
    roi_rate_weight: float | None = None
    loss: str = "mse"                 # "mse", "sqrt_mse" or "log_mse" (see distortion_loss)
    # lost frames: this share of the samples lose a random erasure_share of their symbols (zeros,
    # at random positions, as the link's interleaver spreads a lost frame over the image)
    erasure_fraction: float = 0.0
    erasure_share: tuple = (0.1, 0.5)
    threads: int = 1
    # "awgn_rayleigh": AWGN or (rayleigh_fraction) Rayleigh block fading, erasures as above;
    # "csi_link": the OFDM link as a CSI decoder sees it (channel.csi_link_channel: per-symbol
    # fading mix, lost symbols, per-symbol reliabilities; erasure_fraction / erasure_share apply)
    channel: str = "awgn_rayleigh"
    # parameter-name prefixes to train (empty: all). A decoder-only fine-tune keeps the
    # transmitted symbols bit-identical to the warm-start model's.
    train_only: tuple = ()
    frozen: tuple = ()                  # parameter-name prefixes kept as initialised (e.g. [klt])
    # csi_link only: ((kind, weight), ...) of channel.CSI_MIX kinds; empty = CSI_MIX
    csi_mix: tuple = ()
    # lesion-aware training (codec.lesion): each step also sends lesion_batch present/absent
    # nodule pairs (the first lesion_pairs of the train split, rendered on first use) and adds
    # lesion_weight x their signal-transfer loss over a disc lesion_window nodule radii wide
    lesion_pairs: int = 0
    lesion_batch: int = 0
    lesion_weight: float = 0.0
    lesion_window: float = 2.0
    lesion_root: str | None = None    # a nodule pair set (data.nodules layout); None: rendered on demand

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = known_fields(cls, d, "train")
        for key in ("snr_db", "payload_cbr", "erasure_share"):
            if key in d:
                d[key] = tuple(float(v) for v in d[key])
        for key in ("train_only", "frozen"):
            if key in d:
                d[key] = tuple(str(v) for v in d[key])
        if "csi_mix" in d:
            try:
                d["csi_mix"] = tuple((str(k), float(w)) for k, w in d["csi_mix"])
            except (TypeError, ValueError):
                raise MedJSCCError(f"train.csi_mix must be a list of [kind, weight] pairs, got {d['csi_mix']!r}") from None
        cfg = cls(**d)
        if cfg.lesion_batch and not (cfg.lesion_pairs >= 1 and cfg.lesion_batch >= 1 and cfg.lesion_weight >= 0
                                     and cfg.lesion_window > 0):
            raise MedJSCCError("train.lesion_batch needs lesion_pairs >= 1, lesion_weight >= 0 and lesion_window > 0, "
                               f"got {cfg.lesion_pairs}, {cfg.lesion_weight}, {cfg.lesion_window}")
        if cfg.channel not in TRAIN_CHANNELS:
            raise MedJSCCError(f"train.channel must be one of {', '.join(TRAIN_CHANNELS)}, got {cfg.channel!r}")
        if cfg.loss not in LOSSES:
            raise MedJSCCError(f"train.loss must be one of {', '.join(LOSSES)}, got {cfg.loss!r}")
        kinds = {k for k, _ in CSI_MIX}
        if any(k not in kinds or not w >= 0 for k, w in cfg.csi_mix) or (cfg.csi_mix and not sum(w for _, w in cfg.csi_mix) > 0):
            raise MedJSCCError(f"train.csi_mix: kinds from {sorted(kinds)} with weights >= 0 (not all 0), got {cfg.csi_mix!r}")
        return cfg


def erasure_shares(rng: np.random.Generator, batch: int, tcfg: TrainConfig) -> np.ndarray:
    """Per sample: the share of its symbols lost (0 for the samples without erasures)."""
    if not tcfg.erasure_fraction:     # no draw: runs without erasures keep their random stream
        return np.zeros(batch)
    lo, hi = tcfg.erasure_share
    hit = rng.random(batch) < tcfg.erasure_fraction
    return np.where(hit, rng.uniform(lo, hi, batch), 0.0)


def erase_symbols(z: torch.Tensor, share: np.ndarray) -> torch.Tensor:
    """Zero a random ``share[b]`` of sample b's symbols (complex (B, n)): what the receiver hands
    the decoder for the symbols of lost frames."""
    if not np.any(share):
        return z
    keep = torch.rand(z.shape, device=z.device) >= torch.as_tensor(share, dtype=torch.float32,
                                                                   device=z.device)[:, None]
    return z * keep


def load_run_config(path: str | Path) -> tuple[str, ModelConfig, TrainConfig]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise MedJSCCError(f"training config not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise MedJSCCError(f"training config {p} is not valid YAML: {e}") from None
    unknown = set(data) - {"name", "description", "model", "train"}
    if unknown:
        raise MedJSCCError(f"{p}: unknown top-level keys {sorted(unknown)}")
    name = data.get("name") or p.stem
    mcfg = ModelConfig.from_dict({**(data.get("model") or {}), "name": name})
    tcfg = TrainConfig.from_dict(data.get("train") or {})
    return name, mcfg, tcfg


def roi_grid_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """Pixel masks (B,1,H,W) -> latent-grid ROI (B,1,H/16,W/16), rule "any" as in
    ``roi.sideinfo.mask_to_grid``."""
    return F.max_pool2d(masks, DOWNSCALE)


class _Batches:
    def __init__(self, pairs, crop: int, rng: np.random.Generator):
        self.images = np.stack([p["image"] for p in pairs])
        self.masks = np.stack([p["mask"] if p["mask"] is not None else np.zeros_like(p["image"], bool)
                               for p in pairs])
        self.crop, self.rng = crop, rng
        h, w = self.images.shape[1:]
        if h < crop or w < crop:
            raise MedJSCCError(f"training images ({h}x{w}) are smaller than the crop {crop}")

    def sample(self, b: int):
        n, h, w = self.images.shape
        idx = self.rng.integers(0, n, b)
        ys = self.rng.integers(0, h - self.crop + 1, b)
        xs = self.rng.integers(0, w - self.crop + 1, b)
        flip = self.rng.random(b) < 0.5
        imgs, masks = [], []
        for i, y, x, f in zip(idx, ys, xs, flip):
            im = self.images[i, y:y + self.crop, x:x + self.crop]
            mk = self.masks[i, y:y + self.crop, x:x + self.crop]
            if f:
                im, mk = im[:, ::-1], mk[:, ::-1]
            imgs.append(im)
            masks.append(mk)
        x = torch.from_numpy(np.stack(imgs).astype(np.float32) / 255.0)[:, None]
        m = torch.from_numpy(np.stack(masks).astype(np.float32))[:, None]
        return x, m


KLT_INIT_IMAGES = 256   # training images that set the linear path's transform


def linear_init_images(pairs, cell: int = DOWNSCALE, max_images: int = KLT_INIT_IMAGES) -> list:
    """The first ``max_images`` training images as (H, W) float32 in [0, 1], cut to multiples of
    ``cell``: the data of the linear path's initialisation (deterministic)."""
    out = []
    for p in pairs[:max_images]:
        img = p["image"].astype(np.float32) / 255.0
        h, w = (img.shape[0] // cell) * cell, (img.shape[1] // cell) * cell
        out.append(np.ascontiguousarray(img[:h, :w]))
    return out


# loss name -> exponent a: each sample's gradient is that of MSE_i ** a (a = 0: log MSE_i)
LOSSES = {"mse": 1.0, "sqrt_mse": 0.5, "log_mse": 0.0}


def weighted_mse(x_hat, x, mask, roi_weight: float):
    """ROI-weighted MSE per sample, shape (B,)."""
    err = (x_hat - x) ** 2
    if roi_weight == 1.0:
        return err.mean(dim=(1, 2, 3))
    w = 1.0 + (roi_weight - 1.0) * mask
    return (err * w).sum(dim=(1, 2, 3)) / w.sum(dim=(1, 2, 3))


def distortion_loss(mse: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Batch distortion from per-sample MSEs (B,).

    ``mse``: the plain mean; samples at low SNR and low CBR have MSEs ten times those at high
    SNR, so they dominate the gradient and a one-model-for-all-SNRs codec underserves high SNR.
    ``log_mse`` / ``sqrt_mse``: each sample's gradient is that of log(MSE_i) / sqrt(MSE_i)
    (log: mean PSNR is maximised), done as detached weights (mean MSE / MSE_i) ** (1 - a) on
    the MSEs, so the loss keeps the MSE's magnitude (gradient clipping and ``rate_lambda`` keep
    their meaning)."""
    if kind not in LOSSES:
        raise MedJSCCError(f"unknown loss {kind!r} (one of {', '.join(LOSSES)})")
    if kind == "mse":
        return mse.mean()
    m = mse.clamp_min(1e-10)
    if kind == "log_mse":   # the form the shipped weights were trained with (same numbers, same rounding)
        return (m / m.detach()).mean() * m.detach().mean()
    weights = (m.detach().mean() / m.detach()) ** (1.0 - LOSSES[kind])
    return (weights * m).mean()


def _psnr(mse: torch.Tensor) -> torch.Tensor:
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


def validate(model: JSCCModel, pairs, snr_db: float = 10.0, cbr: float = 1.0 / 16.0, seed: int = 0) -> dict:
    """Full-image PSNR / ROI-PSNR on validation pairs over AWGN (fixed noise seed)."""
    model.eval()
    dev = next(model.parameters()).device
    # the noise is drawn where the model runs (a CPU generator cannot feed CUDA tensors)
    gen = torch.Generator(device=dev).manual_seed(seed)
    psnrs, rois = [], []
    with torch.no_grad():
        for p in pairs:
            img = p["image"]
            h, w = img.shape
            hh, ww = -(-h // 16) * 16, -(-w // 16) * 16
            x = torch.from_numpy(img.astype(np.float32) / 255.0)[None, None]
            x = F.pad(x, (0, ww - w, 0, hh - h), mode="replicate")
            m = torch.zeros_like(x) if p["mask"] is None else F.pad(
                torch.from_numpy(p["mask"].astype(np.float32))[None, None], (0, ww - w, 0, hh - h))
            x, m = x.to(dev), m.to(dev)
            roi = roi_grid_from_masks(m) if model.cfg.use_roi else None
            target = torch.tensor([round(cbr * h * w)])
            x_hat, _, _ = model(x, roi, torch.tensor([snr_db], device=dev), target,
                                lambda z, s: apply_channel(z, "awgn", s, generator=gen))
            x_hat = x_hat.clamp(0, 1)[..., :h, :w]
            x0 = x[..., :h, :w]
            psnrs.append(float(_psnr(((x_hat - x0) ** 2).mean())))
            if p["mask"] is not None and p["mask"].any():
                mm = torch.from_numpy(p["mask"])[None, None].to(dev)
                rois.append(float(_psnr(((x_hat - x0) ** 2)[mm].mean())))
    model.train()
    return {"psnr": float(np.mean(psnrs)), "roi_psnr": float(np.mean(rois)) if rois else float("nan")}


def _lr_at(step: int, tcfg: TrainConfig) -> float:
    warm = min(100, tcfg.steps // 10)
    if step < warm:
        return tcfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, tcfg.steps - warm)
    return tcfg.lr_min + 0.5 * (tcfg.lr - tcfg.lr_min) * (1 + math.cos(math.pi * t))


def warm_start(model: JSCCModel, source: str) -> int:
    from .weights import read_checkpoint, resolve_weights

    ckpt = read_checkpoint(resolve_weights(source))
    own = model.state_dict()
    copied = {k: v for k, v in ckpt["state_dict"].items() if k in own and own[k].shape == v.shape}
    own.update({k: v.to(own[k].dtype) for k, v in copied.items()})
    model.load_state_dict(own)
    return len(copied)


def train(config_path: str | Path, device: str = "cpu", resume: bool = False, data_root=None,
          runs_dir: str | Path | None = None, out_path: str | Path | None = None,
          synthetic: bool = False, steps: int | None = None, progress: bool = True) -> Path:
    from tqdm import tqdm

    from ..paths import repo_root
    from .weights import save_weights, shipped_models_dir
    from .datasets import load_pairs, synthetic_pairs

    name, mcfg, tcfg = load_run_config(config_path)
    if steps is not None:
        tcfg.steps = int(steps)
    torch.set_num_threads(max(1, int(tcfg.threads)))
    runs = Path(runs_dir) if runs_dir else (repo_root() or Path.cwd()) / "runs"
    run_dir = runs / name
    run_dir.mkdir(parents=True, exist_ok=True)
    out_path = Path(out_path) if out_path else shipped_models_dir() / f"{name}.pt"
    dev = torch.device(device)

    torch.manual_seed(tcfg.seed)
    rng = np.random.default_rng(tcfg.seed)
    if synthetic:
        train_pairs, val_pairs = synthetic_pairs(32, 256, tcfg.seed), synthetic_pairs(4, 256, tcfg.seed + 1)
    else:
        train_pairs = load_pairs(data_root, "train")
        val_pairs = load_pairs(data_root, "val", limit=tcfg.val_images)
    batches = _Batches(train_pairs, tcfg.crop, rng)
    lesions = None
    if tcfg.lesion_batch:
        from ..data.nodules import ensure_nodule_set

        root = tcfg.lesion_root or ensure_nodule_set(tcfg.lesion_pairs, "train", progress=progress)
        lesions = LesionBatches(root, tcfg.crop, rng, limit=tcfg.lesion_pairs, window=tcfg.lesion_window)

    model = build_model(mcfg).to(dev)
    inference_roi_weight = mcfg.roi_rate_weight
    if tcfg.roi_rate_weight is not None:
        if not tcfg.roi_rate_weight > 0:
            raise MedJSCCError(f"train.roi_rate_weight must be positive, got {tcfg.roi_rate_weight}")
        model.cfg.roi_rate_weight = float(tcfg.roi_rate_weight)
    if tcfg.train_only:
        for pname, prm in model.named_parameters():
            prm.requires_grad_(pname.startswith(tcfg.train_only))
        if not any(p.requires_grad for p in model.parameters()):
            raise MedJSCCError(f"train.train_only {list(tcfg.train_only)} matches no parameter")
    if tcfg.frozen:
        names = [n for n, _ in model.named_parameters() if n.startswith(tcfg.frozen)]
        if not names:
            raise MedJSCCError(f"train.frozen {list(tcfg.frozen)} matches no parameter")
        for pname, prm in model.named_parameters():
            if pname in names:
                prm.requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=tcfg.lr)
    step0, elapsed0 = 0, 0.0
    ckpt_path = run_dir / "last.pt"
    if resume and ckpt_path.exists():
        from ..checksums import verify_sha256

        # the checkpoint's SHA-256 side file (written by save_ckpt) catches a truncated or
        # replaced file before torch unpickles it
        verify_sha256(ckpt_path, remedy=f"delete {ckpt_path} to start over, or run without --resume")
        try:
            ck = torch.load(ckpt_path, map_location=dev, weights_only=True)
        except Exception as e:
            raise MedJSCCError(f"cannot load resume checkpoint {ckpt_path}: {e}") from None
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step0, elapsed0 = int(ck["step"]), float(ck.get("elapsed_s", 0.0))
        torch.set_rng_state(ck["torch_rng"])
        rng.bit_generator.state = json.loads(ck["numpy_rng"])
        log.info("resumed %s at step %d", name, step0)
    elif tcfg.init_from:
        n = warm_start(model, tcfg.init_from)
        log.info("warm start from %s: %d tensors copied", tcfg.init_from, n)
    elif mcfg.linear_path:
        model.init_linear_path(linear_init_images(train_pairs))
        log.info("linear path (%s) initialised from %d training images", mcfg.linear_transform,
                 min(KLT_INIT_IMAGES, len(train_pairs)))

    def save_ckpt(step, elapsed):
        from ..checksums import file_sha256, sha256_path

        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "elapsed_s": elapsed, "torch_rng": torch.get_rng_state(),
                    "numpy_rng": json.dumps(rng.bit_generator.state)}, tmp)
        side, side_tmp = sha256_path(ckpt_path), ckpt_path.with_suffix(".sha256.tmp")
        side_tmp.write_text(f"{file_sha256(tmp)}  {ckpt_path.name}\n")
        # a crash between the two renames leaves a mismatch: --resume then stops with a clear
        # error instead of loading a checkpoint it cannot vouch for
        tmp.replace(ckpt_path)
        side_tmp.replace(side)

    logf = open(run_dir / "metrics.jsonl", "a")
    t_start = time.time() - elapsed0
    bar = tqdm(range(step0, tcfg.steps), initial=step0, total=tcfg.steps, desc=name,
               disable=not progress, mininterval=5.0)
    ema = None
    model.train()
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, tcfg)
        x, m = batches.sample(tcfg.batch_size)
        lo, hi = tcfg.snr_db
        c_lo, c_hi = tcfg.payload_cbr
        snr_np = rng.uniform(lo, hi, x.shape[0])
        cbr = np.exp(rng.uniform(math.log(c_lo), math.log(c_hi), x.shape[0]))
        n_plain = x.shape[0]
        if lesions is not None:   # pairs after the plain crops: present, absent; one SNR and CBR per pair
            xp, xa, mp, win = lesions.sample(tcfg.lesion_batch)
            k = xp.shape[0]
            x, m = torch.cat([x, xp, xa]), torch.cat([m, mp, mp])
            ps, pc = rng.uniform(lo, hi, k), np.exp(rng.uniform(math.log(c_lo), math.log(c_hi), k))
            snr_np, cbr = np.concatenate([snr_np, ps, ps]), np.concatenate([cbr, pc, pc])
            win = win.to(dev)
        x, m = x.to(dev), m.to(dev)
        b = x.shape[0]
        roi = roi_grid_from_masks(m) if mcfg.use_roi else None
        snr = torch.from_numpy(snr_np.astype(np.float32)).to(dev)
        n_pix = x.shape[-1] * x.shape[-2]
        positions = n_pix // DOWNSCALE**2
        # the image's whole budget (payload + side info), as Codec.encode gets it
        target = torch.from_numpy(np.minimum(cbr * n_pix, mcfg.k_max * positions))
        if tcfg.channel == "csi_link":
            def channel_fn(z, s):
                return csi_link_channel(z, s, erasure_fraction=tcfg.erasure_fraction,
                                        erasure_share=tcfg.erasure_share, mix=tcfg.csi_mix or CSI_MIX)
        else:
            kind = "rayleigh" if rng.random() < tcfg.rayleigh_fraction else "awgn"
            share = erasure_shares(rng, b, tcfg)

            def channel_fn(z, s):
                return erase_symbols(apply_channel(z, kind, s), share)
        if lesions is not None:
            channel_fn = _paired_channel(channel_fn, n_plain, tcfg.lesion_batch)
        x_hat, bpp, n_sym = model(x, roi, snr, target, channel_fn)
        dist = distortion_loss(weighted_mse(x_hat, x, m, tcfg.roi_distortion_weight), tcfg.loss)
        loss = dist + tcfg.rate_lambda * bpp.mean()
        if lesions is not None and tcfg.lesion_weight:
            k = tcfg.lesion_batch
            loss = loss + tcfg.lesion_weight * signal_transfer_loss(
                x_hat[n_plain:n_plain + k], x_hat[n_plain + k:], x[n_plain:n_plain + k], x[n_plain + k:], win)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            psnr = float(_psnr(((x_hat.clamp(0, 1) - x) ** 2).mean()))
        cur = np.array([float(loss.detach()), psnr, float((n_sym / n_pix).mean())])
        ema = cur if ema is None else 0.98 * ema + 0.02 * cur
        bar.set_postfix(loss=f"{ema[0]:.4f}", psnr=f"{ema[1]:.2f}", cbr=f"{ema[2]:.4f}", refresh=False)
        done = step + 1
        if done % tcfg.checkpoint_every == 0 or done == tcfg.steps:
            save_ckpt(done, time.time() - t_start)
        if done % tcfg.val_every == 0 or done == tcfg.steps:
            val = validate(model, val_pairs)
            rec = {"step": done, "elapsed_s": round(time.time() - t_start, 1), "train_loss": ema[0],
                   "train_psnr": ema[1], "val_psnr_awgn10_cbr1_16": val["psnr"],
                   "val_roi_psnr_awgn10_cbr1_16": val["roi_psnr"]}
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            log.info("step %d val psnr %.2f roi %.2f", done, val["psnr"], val["roi_psnr"])
            if progress:
                bar.write(json.dumps(rec))
    logf.close()
    model.cfg.roi_rate_weight = inference_roi_weight
    wall = time.time() - t_start
    meta = {"steps": tcfg.steps, "wall_time_s": round(wall, 1), "train": _jsonable(dataclasses.asdict(tcfg)),
            "config_file": str(config_path), "synthetic_data": bool(synthetic)}
    save_weights(model, out_path, meta)
    log.info("wrote %s (%.1f s)", out_path, wall)
    return out_path


def _paired_channel(channel_fn, n_plain: int, k: int):
    """``channel_fn`` whose last k rows (the absent images of the lesion pairs) get the channel
    draw of the k rows before them (the present images): y_a = z_a + (y_p - z_p)."""
    def fn(z, s):
        y = channel_fn(z, s)
        a = n_plain + k
        return torch.cat([y[:a], z[a:] + (y[n_plain:a] - z[n_plain:a])])
    return fn


def _jsonable(d):
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
