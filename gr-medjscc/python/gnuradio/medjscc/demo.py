"""End-to-end demo behind ``make demo`` / ``medjscc demo`` (see cli/demo.py for the options)."""
from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

import numpy as np

from . import metrics
from .config import LinkConfig
from .snr import parse_number, parse_spec

log = logging.getLogger(__name__)


def _load_images(n: int, seed: int):
    """The first ``n`` test-split DRRs of the default set with their ground-truth lung masks.

    When the default set is not generated yet, only these ``n`` images are rendered (the same
    bytes the full set would hold), so a fresh ``make demo`` does not wait for 600 images.
    """
    from . import paths
    from .data import drr, load_split

    root = paths.default_data_dir()
    if drr._dataset_complete(root, drr.split_counts(None)):
        ds = load_split("test", limit=n)
        items = [ds[i] for i in range(min(n, len(ds)))]
        return [it["image"] for it in items], [it["mask"] for it in items], [it["name"] for it in items]
    plan = [it for it in drr.image_plan(drr.split_counts(None), drr.DEFAULT_SEED) if it["split"] == "test"][:n]
    rendered = [drr._render_item(it, drr.DEFAULT_SIZE, drr.DEFAULT_SEED) for it in plan]
    return [r[0] for r in rendered], [r[1] for r in rendered], [it["name"] for it in plan]


def _bar(total: int, desc: str, unit: str = "img"):
    """A progress bar on stderr (shown on a terminal only), so the demo is never silent for long."""
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)


def _roi_masks(images, gt_masks, backend: str):
    if backend == "oracle":
        return list(gt_masks)
    if backend == "none":
        return [None] * len(images)
    from .roi import get_segmenter

    seg = get_segmenter(backend)
    masks = []
    with _bar(len(images), f"[demo] ROI ({backend})") as bar:
        for img in images:
            masks.append(seg.segment(img))
            bar.update()
    return masks


def _symbol_link(codec, images, masks, snrs, cbr, channel, seed):
    from .codec.channel import numpy_channel

    out = []
    for snr in snrs:
        for i, (img, m) in enumerate(zip(images, masks)):
            enc = codec.encode(img, m, snr_db=snr, cbr=cbr)
            rng = np.random.default_rng([seed, i, int(round(snr * 100)) & 0xFFFF])
            rx = numpy_channel(enc.symbols, kind=channel, snr_db=snr, rng=rng)
            extra = {}
            if hasattr(codec, "decode_with_info"):   # the hybrid says which sections decoded
                dec, info = codec.decode_with_info(rx, enc.side_info, enc.shape, snr_db=snr)
                from .codec.hybrid_codec import DECODED_SHOWN

                extra = dict(decoded=info["shown"] in DECODED_SHOWN, shown=info["shown"],
                             layout=info["label"])
            else:
                dec = codec.decode(rx, enc.side_info, enc.shape, snr_db=snr)
            out.append(dict(snr_db=snr, image_index=i, received=dec, snr_est_db=float("nan"),
                            frames_ok=1, frames_total=1, cbr_total=enc.cbr_total,
                            cbr_payload=enc.cbr_payload, **extra))
    return out


def _montage(path: Path, images, masks, names, results, snrs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2 + len(snrs)
    fig, axes = plt.subplots(len(images), cols, figsize=(2.2 * cols, 2.4 * len(images)), squeeze=False)
    by_key = {(r["image_index"], r["snr_db"]): r for r in results}
    for i, img in enumerate(images):
        axes[i, 0].imshow(img, cmap="gray", vmin=0, vmax=255)
        axes[i, 0].set_title(f"original\n{names[i]}", fontsize=8)
        axes[i, 1].imshow(img, cmap="gray", vmin=0, vmax=255)
        if masks[i] is not None:
            axes[i, 1].contour(masks[i].astype(float), levels=[0.5], colors="r", linewidths=0.8)
        axes[i, 1].set_title("ROI mask (TX)", fontsize=8)
        for j, snr in enumerate(snrs):
            r = by_key.get((i, snr))
            ax = axes[i, 2 + j]
            if r is not None:
                ax.imshow(r["received"], cmap="gray", vmin=0, vmax=255)
                ax.set_title(f"{snr:g} dB: {r['psnr']:.1f} / ROI {r['roi_psnr']:.1f}", fontsize=8)
        for ax in axes[i]:
            ax.axis("off")
    fig.suptitle("Med-JSCC over the link (PSNR / ROI-PSNR in dB)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _air_cbr_fn(cfg: LinkConfig, link: str):
    """Channel uses on air per pixel for one image: OFDM framing overhead included (``ofdm``), or
    the codec's total CBR itself on the symbol link."""
    if link != "ofdm":
        return lambda r, n_pixels: float(r.get("cbr_total", float("nan")))
    from .blocks._phyadapt import make_params
    from .phy.framing import overhead_symbols

    params = make_params(cfg.ofdm)

    def air(r, n_pixels):
        if np.isfinite(r.get("cbr_air", float("nan"))):   # what the link really sent
            return float(r["cbr_air"])
        n_payload = int(round(r.get("cbr_payload", 0.0) * n_pixels))
        side_bits = max(0.0, (r.get("cbr_total", 0.0) - r.get("cbr_payload", 0.0)) * n_pixels)
        return overhead_symbols(n_payload, int(np.ceil(side_bits / 8)), params)["total"] / n_pixels

    return air


def run_demo(args) -> int:
    from .codec import load_codec

    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    snrs = parse_spec(args.snr)
    cbr = parse_number(args.cbr)
    cfg = LinkConfig.from_dict({"codec": {"model": args.model, "cbr": cbr},
                                "roi": {"backend": args.roi if args.roi != "none" else "none"},
                                "channel": {"kind": args.channel, "seed": args.seed}})

    images, gt_masks, names = _load_images(args.images, args.seed)
    print(f"[demo] {len(images)} DRR test images {images[0].shape}; ROI backend: {args.roi}")
    tx_masks = _roi_masks(images, gt_masks, args.roi)

    if args.link == "ofdm":
        from .blocks.loopback import run_ofdm_loopback

        with _bar(len(snrs) * len(images), "[demo] OFDM loopback") as bar:
            results = run_ofdm_loopback(images, tx_masks, cfg, snrs, channel=args.channel, progress=bar.update)
    else:
        codec = load_codec(args.model, device=cfg.codec.device)
        results = _symbol_link(codec, images, tx_masks, snrs, cbr, args.channel, args.seed)

    air_cbr = _air_cbr_fn(cfg, args.link)
    rows = []
    for r in results:
        i = r["image_index"]
        m = metrics.image_metrics(images[i], r["received"], gt_masks[i])
        r.update(m)
        rows.append({
            "image": names[i], "snr_db": r["snr_db"], "snr_est_db": r.get("snr_est_db", float("nan")),
            "link": args.link, "channel": args.channel, "model": args.model, "roi": args.roi,
            "cbr_target": cbr, "cbr_total": r.get("cbr_total", float("nan")),
            "cbr_payload": r.get("cbr_payload", float("nan")),
            "cbr_air": air_cbr(r, images[i].size),
            "frames_ok": r.get("frames_ok"), "frames_total": r.get("frames_total"),
            "status": r.get("status", "decoded"), "decoded": bool(r.get("decoded", True)),
            "psnr": round(m["psnr"], 3), "roi_psnr": round(m["roi_psnr"], 3), "ms_ssim": round(m["ms_ssim"], 4),
        })
        # the hybrid codec's sections (what decoded: jscc_rx), when the model is one
        rows[-1].update({k: r[k] for k in ("shown", "base_ok", "layout") if k in r})
        import PIL.Image

        PIL.Image.fromarray(r["received"]).save(out / f"{names[i]}_snr{r['snr_db']:g}.png")

    with open(out / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "metrics.json").write_text(json.dumps(rows, indent=1))
    _montage(out / "montage.png", images, tx_masks, names, results, snrs)

    print(f"\n{'SNR dB':>7} {'est dB':>7} {'PSNR':>7} {'ROI-PSNR':>9} {'MS-SSIM':>8} {'CBR tot':>8} "
          f"{'CBR air':>8} {'frames':>7} {'decoded':>8}")
    for snr in snrs:
        sel = [r for r in rows if r["snr_db"] == snr]
        fr = f"{sum(r['frames_ok'] or 0 for r in sel)}/{sum(r['frames_total'] or 0 for r in sel)}"
        dec = f"{sum(r['decoded'] for r in sel)}/{len(sel)}"
        print(f"{snr:7.1f} {np.nanmean([r['snr_est_db'] for r in sel]):7.1f} "
              f"{np.mean([r['psnr'] for r in sel]):7.2f} {np.mean([r['roi_psnr'] for r in sel]):9.2f} "
              f"{np.mean([r['ms_ssim'] for r in sel]):8.4f} {np.mean([r['cbr_total'] for r in sel]):8.4f} "
              f"{np.mean([r['cbr_air'] for r in sel]):8.4f} {fr:>7} {dec:>8}")
    print("CBR tot: codec symbols + digital side info per pixel; CBR air: every complex sample on air"
          " (preamble, header, pilots, cyclic prefix) per pixel; decoded: images the receiver decoded"
          " (the others show what it had: grey, or a hybrid's analog residual over grey).")
    print(f"\n[demo] wrote {out}/montage.png, metrics.csv, metrics.json in {time.time() - t0:.1f} s")
    return 0
