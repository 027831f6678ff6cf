"""Figures of a sweep (matplotlib object API, Agg canvas): PNG + PDF of each.

* ``<metric>_vs_snr_cbr<c>``: ROI-PSNR / PSNR / MS-SSIM against SNR, one line per method
  (digital methods as their MCS envelope, capacity bounds dashed), per CBR.
* ``<metric>_vs_cbr_snr<s>``: the same against CBR at each swept SNR (when >1 CBR).
* ``montage_cbr<c>``: the first test image through every method at every swept SNR (at most
  ``outputs.MONTAGE_COLUMNS``, evenly spread).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

METRICS = (("roi_psnr", "ROI-PSNR (dB)"), ("psnr", "PSNR (dB)"), ("ms_ssim", "MS-SSIM"))


class _OO:
    """pyplot-free figure factory: works headless and inside Jupyter kernels whose IPython is
    newer than Debian's matplotlib 3.6 pyplot hook expects."""

    @staticmethod
    def subplots(nrows=1, ncols=1, figsize=None, squeeze=True):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        FigureCanvasAgg(fig)
        return fig, fig.subplots(nrows, ncols, squeeze=squeeze)

    @staticmethod
    def close(fig):
        pass


def _plt():
    return _OO


def _style(method: str):
    from .methods import CAPACITY, DIGITAL

    if method in CAPACITY:
        return dict(linestyle="--", marker=None)
    if method in DIGITAL:
        return dict(linestyle="-", marker="s", markersize=4)
    return dict(linestyle="-", marker="o", markersize=4, linewidth=2 if method == "medjscc" else 1.3)


def _label(method: str) -> str:
    from .methods import DIGITAL

    return f"{method} (envelope)" if method in DIGITAL else method


def _save(fig, path_stem: Path) -> list[Path]:
    paths = []
    for ext in ("png", "pdf"):
        p = path_stem.with_suffix(f".{ext}")
        fig.savefig(p, dpi=120, bbox_inches="tight")
        paths.append(p)
    return paths


def make_all(out: Path, points: list[dict], per_mcs: list[dict] | None = None, task: dict | None = None) -> list[Path]:
    from .outputs import cbr_label

    plt = _plt()
    out = Path(out)
    pdir = out / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if not points:
        return written
    methods = sorted({p["method"] for p in points})
    cbrs = sorted({p["cbr"] for p in points})
    snrs = sorted({p["snr_db"] for p in points})
    channel, link = points[0]["channel"], points[0]["link"]
    # --budget air: the swept cbr is samples on air per pixel, not the codec's CBR
    cbr_name = "air CBR" if points[0].get("budget") == "air" else "CBR"
    for key, label in METRICS:
        for cbr in cbrs:
            fig, ax = plt.subplots(figsize=(6, 4))
            for m in methods:
                pts = sorted((p for p in points if p["method"] == m and p["cbr"] == cbr), key=lambda p: p["snr_db"])
                ys = [p[key] for p in pts]
                if not pts or all(v is None or not math.isfinite(v) for v in ys):
                    continue
                ax.plot([p["snr_db"] for p in pts], ys, label=_label(m), **_style(m))
            ax.set_xlabel("SNR Es/N0 (dB)")
            ax.set_ylabel(label)
            ax.set_title(f"{label} vs SNR, {cbr_name} {cbr:g}, {channel}, {link} link")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            written += _save(fig, pdir / f"{key}_vs_snr_cbr{cbr_label(cbr)}")
            plt.close(fig)
        if len(cbrs) > 1:
            for snr in snrs:
                fig, ax = plt.subplots(figsize=(6, 4))
                for m in methods:
                    pts = sorted((p for p in points if p["method"] == m and p["snr_db"] == snr), key=lambda p: p["cbr"])
                    if pts:
                        ax.plot([p["cbr"] for p in pts], [p[key] for p in pts], label=_label(m), **_style(m))
                ax.set_xscale("log", base=2)
                ax.set_xlabel("air CBR (samples on air / pixel)" if cbr_name == "air CBR"
                              else "CBR (channel symbols / pixel)")
                ax.set_ylabel(label)
                ax.set_title(f"{label} vs CBR at {snr:g} dB, {channel}, {link} link")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=7)
                written += _save(fig, pdir / f"{key}_vs_cbr_snr{snr:g}")
                plt.close(fig)
    written += make_task_plots(out, points, task)
    written += make_montages(out, points)
    return written


def make_task_plots(out: Path, points: list[dict], task: dict | None = None) -> list[Path]:
    """``task_auc_vs_snr_cbr<c>``: nodule-detection AUC (95% bootstrap bars) against SNR per method
    beside ROI-PSNR, with the AUC on the original images as a band (``--task nodule``), and
    ``dice_vs_original`` (95% bootstrap bars) when the points carry it."""
    from .outputs import cbr_label

    pts_all = [p for p in points if p.get("task_auc") is not None]
    if not pts_all:
        return []
    plt = _plt()
    pdir = Path(out) / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    ref = (task or {}).get("reference") or {}
    channel, link = pts_all[0]["channel"], pts_all[0]["link"]
    written = []
    for cbr in sorted({p["cbr"] for p in pts_all}):
        with_dice = any(p.get("dice_vs_original") is not None for p in pts_all if p["cbr"] == cbr)
        fig, axes = plt.subplots(1, 3 if with_dice else 2, figsize=(16 if with_dice else 11, 4))
        ax, ax2 = axes[0], axes[1]
        for m in sorted({p["method"] for p in pts_all}):
            pts = sorted((p for p in pts_all if p["method"] == m and p["cbr"] == cbr), key=lambda p: p["snr_db"])
            if not pts:
                continue
            x = [p["snr_db"] for p in pts]
            y = np.array([p["task_auc"] for p in pts], float)
            err = np.array([[a - p["task_auc_lo"] for a, p in zip(y, pts)], [p["task_auc_hi"] - a for a, p in zip(y, pts)]])
            ax.errorbar(x, y, yerr=np.clip(err, 0, None), capsize=3, label=_label(m), **_style(m))
            roi = [p.get("roi_psnr") for p in pts]
            if any(v is not None and math.isfinite(v) for v in roi):
                ax2.plot(x, roi, label=_label(m), **_style(m))
            dpts = [p for p in pts if p.get("dice_vs_original") is not None]
            if with_dice and dpts:
                d = np.array([p["dice_vs_original"] for p in dpts], float)
                derr = np.array([[a - p["dice_vs_original_lo"] for a, p in zip(d, dpts)],
                                 [p["dice_vs_original_hi"] - a for a, p in zip(d, dpts)]])
                axes[2].errorbar([p["snr_db"] for p in dpts], d, yerr=np.clip(derr, 0, None), capsize=3,
                                 label=_label(m), **_style(m))
        if ref.get("task_auc") is not None:
            ax.axhline(ref["task_auc"], color="k", linewidth=1, label="original images")
            ax.axhspan(ref["task_auc_lo"], ref["task_auc_hi"], color="k", alpha=0.08)
        ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("SNR Es/N0 (dB)")
        ax.set_ylabel("nodule detection AUC (CHO)")
        ax.set_title(f"Task AUC vs SNR, CBR {cbr:g}, {channel}, {link} link", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax2.set_xlabel("SNR Es/N0 (dB)")
        ax2.set_ylabel("ROI-PSNR (dB)")
        ax2.set_title("ROI-PSNR of the sweep images", fontsize=9)
        ax2.grid(alpha=0.3)
        if with_dice:
            axes[2].set_xlabel("SNR Es/N0 (dB)")
            axes[2].set_ylabel("Dice, lung mask received vs original")
            axes[2].set_title("ROI segmentation of the received task images", fontsize=9)
            axes[2].grid(alpha=0.3)
            axes[2].legend(fontsize=7)
        written += _save(fig, pdir / f"task_auc_vs_snr_cbr{cbr_label(cbr)}")
        plt.close(fig)
    return written


def make_montages(out: Path, points: list[dict]) -> list[Path]:
    """Grid: rows = methods, columns = original + montage SNRs, from ``recon/<first image>/``."""
    from PIL import Image

    from .outputs import cbr_label, montage_snrs, recon_path

    plt = _plt()
    rdir = out / "recon"
    if not rdir.is_dir():
        return []
    images = sorted(p.name for p in rdir.iterdir() if p.is_dir())
    if not images:
        return []
    name = images[0]
    original, roi_mask = _find_original(out, name)
    written = []
    for cbr in sorted({p["cbr"] for p in points}):
        snrs = montage_snrs(p["snr_db"] for p in points if p["cbr"] == cbr)
        methods = sorted({p["method"] for p in points if p["cbr"] == cbr})
        cells = {}
        for m in methods:
            for s in snrs:
                pt = next((p for p in points if p["method"] == m and p["cbr"] == cbr and p["snr_db"] == s), None)
                if pt is None:
                    continue
                path = recon_path(out, name, m, pt.get("recon_tag") or pt.get("mcs") or "", s, cbr)
                if path.is_file():
                    cells[(m, s)] = (np.asarray(Image.open(path)), pt)
        methods = [m for m in methods if any((m, s) in cells for s in snrs)]
        if not methods or not snrs:
            continue
        ncol = len(snrs) + (1 if original is not None else 0)
        height = 2.35 * len(methods) + 0.5
        fig, axes = plt.subplots(len(methods), ncol, figsize=(2.2 * ncol, height), squeeze=False)
        fig.subplots_adjust(left=0.06, right=0.99, bottom=0.01, top=1 - 0.95 / height, wspace=0.05, hspace=0.3)
        for i, m in enumerate(methods):
            col = 0
            if original is not None:
                axes[i, 0].imshow(original, cmap="gray", vmin=0, vmax=255)
                axes[i, 0].set_title("original" if i == 0 else "", fontsize=8)
                col = 1
            for j, s in enumerate(snrs):
                ax = axes[i, col + j]
                if (m, s) in cells:
                    img, pt = cells[(m, s)]
                    ax.imshow(img, cmap="gray", vmin=0, vmax=255)
                    txt = f"{s:g} dB"
                    if original is not None and original.shape == img.shape:  # this image's own numbers
                        from ..metrics import psnr

                        txt += f": {psnr(original, img):.1f}"
                        if roi_mask is not None and roi_mask.shape == img.shape and roi_mask.any():
                            txt += f"/{psnr(original, img, roi_mask):.1f}"
                    ax.set_title(txt + (f"\n{pt['mcs']}" if pt.get("mcs") else ""), fontsize=7)
            axes[i, 0].set_ylabel(m, fontsize=8)
            for ax in axes[i]:
                ax.set_xticks([])
                ax.set_yticks([])
        fig.suptitle(f"{name}, CBR {cbr:g}: this image's PSNR/ROI-PSNR (dB); digital rows at the "
                     f"envelope MCS", fontsize=9, y=1 - 0.2 / height)
        written += _save(fig, out / "plots" / f"montage_cbr{cbr_label(cbr)}")
        plt.close(fig)
    return written


def _find_original(out: Path, name: str):
    """(image, ROI mask) of ``name`` from the sweep's data folder, (None, None) if unreadable."""
    import json

    from PIL import Image

    try:
        data = json.loads((out / "sweep.json").read_text())["data"]
    except (OSError, KeyError, ValueError):
        return None, None
    image = mask = None
    for p in sorted((Path(data) / "images").glob(f"{name}.*")):
        try:
            image = np.asarray(Image.open(p).convert("L"))
        except OSError:
            pass
        break
    for p in sorted((Path(data) / "masks").glob(f"{name}.*")):
        try:
            mask = np.asarray(Image.open(p).convert("L")) > 127
        except OSError:
            pass
        break
    return image, mask
