"""Training data of the hybrid's learned refinement (``codec/hda.py``). Pure numpy, no torch.

The digital base of a hybrid frame is deterministic (image, codec, byte budget), and its rate
search is the slow part (0.05-0.4 s per stream), so the streams of every training image at every
budget the split rule uses on an SNR grid are encoded once (``precompute_bases``) and stored as
``streams.bin`` + ``index.json``. A training sample then costs one JPEG2000 decode plus the
analog layer through a fresh AWGN draw (``hybrid_sample``): the same functions, and so the same
receiver output, as ``hybrid.decode`` when the digital frames decode.

``frames`` says which frames: ``tx_mask`` (the split rule whose ROI mask only the TX knows,
``split_tx_mask``: what the shipped refiner was trained on) or ``shipped`` (the split
``hybrid-softcast`` / ``medjscc-hda`` send, whose receiver learns the mask where the rule says
``rx_mask``: the ROI grid code then leads the base payload, so the stream is shorter by it, and
the receiver undoes the analog layer's weight), for retraining the refiner on what it receives.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import InputError, MedJSCCError

INDEX = "index.json"
STREAMS = "streams.bin"
FRAMES = ("tx_mask", "shipped")   # see the module doc


def frame_split(snr_db: float, cbr: float, frames: str = "tx_mask"):
    """The split whose frames ``frames`` names, at this SNR and CBR."""
    from . import hybrid

    if frames not in FRAMES:
        raise InputError(f"frames must be one of {', '.join(FRAMES)}, got {frames!r}")
    return hybrid.split_rule(float(snr_db), cbr=cbr, rx_mask=frames == "shipped")


def base_budgets(n_total: int, snrs, cbr: float, frames: str = "tx_mask") -> dict:
    """{(codec or None, frame stream bytes, rx_mask): [snr, ...]} for the layouts ``hybrid.layout``
    gives at ``snrs`` (codec None: no base, pure analog). With ``rx_mask`` the image's ROI grid
    code takes the head of those bytes (its length depends on the mask: ``_encode_image``)."""
    from . import hybrid

    out: dict = {}
    for snr in snrs:
        lay = hybrid.layout(n_total, float(snr), frame_split(snr, cbr, frames))
        if lay.layered:   # its base is two streams in two frames: not what these samples rebuild
            raise MedJSCCError(f"hda_data: the split at {snr:g} dB has a two-layer base; refiner samples "
                               "are made for one-layer bases only")
        key = (None, 0, False)
        if lay.has_base:
            key = (lay.codec, lay.base_stream_bytes, lay.rx_mask)
        out.setdefault(key, []).append(float(snr))
    return out


def _read_pair(img_path: str, mask_path: str | None):
    from PIL import Image

    image = np.asarray(Image.open(img_path).convert("L"), np.uint8)
    mask = None if mask_path is None else np.asarray(Image.open(mask_path).convert("L")) > 0
    return image, mask


def _encode_image(job):
    from . import hybrid

    img_path, mask_path, keys = job
    image, mask = _read_pair(img_path, mask_path)
    out = []
    for codec, budget, rx_mask in keys:
        if rx_mask:   # the grid code leads the payload (hybrid.encode)
            budget -= len(hybrid.mask_block(mask, image.shape)[0])
        data = hybrid._source(codec).encode(image, budget, mask)
        out.append(b"" if data is None else bytes(data))
    return out


def precompute_bases(data_dir, out_dir, cbrs=(1 / 16,), snrs=tuple(range(-8, 27)), limit=None,
                     limit_other=None, workers: int = 2, progress: bool = True, frames: str = "tx_mask") -> dict:
    """Encode the base streams of ``data_dir/images`` (+ ``masks``) for every (CBR, SNR) layout of
    the ``frames`` split. ``limit``: images for the first CBR, ``limit_other``: for the others
    (None: all)."""
    frame_split(0.0, cbrs[0], frames)   # an unknown ``frames`` fails here, not in a worker
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    images = sorted((data_dir / "images").glob("*.png"))
    if not images:
        raise InputError(f"no PNG images in {data_dir / 'images'}")
    out_dir.mkdir(parents=True, exist_ok=True)
    entries, jobs = [], []
    for ci, cbr in enumerate(cbrs):
        n = limit if ci == 0 else limit_other
        shape_pixels = None
        for p in images[:n]:
            if shape_pixels is None:
                image, _ = _read_pair(str(p), None)
                shape_pixels = image.size
            n_total = int(round(shape_pixels * cbr))
            budgets = base_budgets(n_total, snrs, cbr, frames)
            keys = [k for k in budgets if k[0] is not None]
            m = data_dir / "masks" / p.name
            jobs.append((str(p), str(m) if m.exists() else None, keys))
            entries.append(dict(image=p.name, cbr=float(cbr), n_total=n_total,
                                layouts=[dict(codec=k[0], budget=int(k[1]), rx_mask=bool(k[2]), snrs=budgets[k])
                                         for k in budgets]))
    it = None
    with ProcessPoolExecutor(max_workers=max(1, workers)) as ex, open(out_dir / STREAMS, "wb") as f:
        it = ex.map(_encode_image, jobs, chunksize=1)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, total=len(jobs), desc="hda bases", unit="image")
        off = 0
        for entry, streams in zip(entries, it):
            si = 0
            for lay in entry["layouts"]:
                if lay["codec"] is None:
                    lay.update(offset=0, length=0)
                    continue
                data = streams[si]
                si += 1
                f.write(data)
                lay.update(offset=off, length=len(data))
                off += len(data)
    index = dict(data=str(data_dir), cbrs=[float(c) for c in cbrs], snrs=[float(s) for s in snrs], frames=frames,
                 entries=entries)
    (out_dir / INDEX).write_text(json.dumps(index))
    return index


class BaseStore:
    """Reads what ``precompute_bases`` wrote: (image, mask, [(cbr, n_total, codec, stream, snrs)])."""

    def __init__(self, base_dir, data_dir=None):
        base_dir = Path(base_dir)
        if not (base_dir / INDEX).exists():
            raise InputError(f"no {INDEX} in {base_dir}: run precompute_bases first")
        self.index = json.loads((base_dir / INDEX).read_text())
        self.data_dir = Path(data_dir or self.index["data"])
        self.blob = (base_dir / STREAMS).read_bytes()
        self.entries = self.index["entries"]
        self.frames = self.index.get("frames", "tx_mask")   # stores written before the option: tx_mask
        self._images: dict = {}

    def __len__(self):
        return len(self.entries)

    def pair(self, name: str):
        if name not in self._images:
            img, m = self.data_dir / "images" / name, self.data_dir / "masks" / name
            if not img.is_file():
                raise InputError(f"{img} not found: the bases were encoded from another image folder "
                                 f"(give it with --data)")
            self._images[name] = _read_pair(str(img), str(m) if m.exists() else None)
        return self._images[name]

    def stream(self, lay: dict) -> bytes | None:
        if lay["codec"] is None or lay["length"] == 0:
            return None
        return self.blob[lay["offset"]:lay["offset"] + lay["length"]]


def hybrid_sample(image, mask, snr_design: float, snr_true: float, n_total: int, stream: bytes | None,
                  rng: np.random.Generator, frames: str = "tx_mask"):
    """What ``hybrid.decode`` returns for this frame of the ``frames`` split when its digital
    frames decode, on an AWGN channel at ``snr_true`` for a frame laid out for ``snr_design``.
    ``stream``: the base stream (``precompute_bases``; None or b"": no base).
    -> (received uint8, base float (GREY without), has_base)."""
    from ..snr import complex_awgn, noise_variance
    from . import hybrid

    image = np.ascontiguousarray(image, np.uint8)
    cbr = n_total / image.size
    lay = hybrid.layout(int(n_total), float(snr_design), frame_split(snr_design, cbr, frames))
    if lay.layered:
        raise MedJSCCError(f"hda_data: the split at {snr_design:g} dB has a two-layer base; refiner samples "
                           "are made for one-layer bases only")
    base, grid = np.full(image.shape, hybrid.GREY), None
    if lay.has_base and stream:
        base = hybrid._source(lay.codec).decode(stream, image.shape).astype(float)
        if lay.rx_mask:   # the RX reads the grid from the base payload
            grid = hybrid.mask_block(mask, image.shape)[1]
    elif lay.has_base:
        lay = lay.without_base()
    ana, codes, scale = hybrid.analog_layer(hybrid._weighted_residual(image, base, mask, lay.bg_weight, grid),
                                            lay.n_analog, snr_design, lay.n_bands, codes=lay.prior_codes)
    n0 = noise_variance(snr_true)
    y = ana + complex_awgn(ana.shape, snr_true, rng)
    # a prior split without base carries no scale byte: the RX takes unit gain (as decode does)
    s = scale if (lay.has_base or not lay.prior) else 128
    rx_codes = np.asarray(lay.prior_codes, np.int64) if lay.prior else codes
    est = hybrid.analog_decode(y, None, n0, rx_codes, image.shape, snr_design, hybrid.scale_value(s))
    w = hybrid.roi_weights(image.shape, lay.bg_weight, grid=grid) if grid is not None else None
    out = base + (est if w is None else est / w)
    return np.clip(np.round(out), 0, 255).astype(np.uint8), base, lay.has_base


def main(argv=None):
    import argparse

    from ..snr import parse_spec

    ap = argparse.ArgumentParser(description="Encode the hybrid's base streams of a training split once "
                                             "(input of codec/hda.py's training).")
    ap.add_argument("--data", default=None, help="image folder with images/ and masks/ (default: the DRR train split)")
    ap.add_argument("--out", required=True, help="output folder (index.json + streams.bin)")
    ap.add_argument("--cbrs", default="1/16,1/32,1/8", help="CBRs; the first gets --limit images, the rest --limit-other")
    ap.add_argument("--snr", default="-8:26:1", help="SNR grid in dB (list or lo:hi:step)")
    ap.add_argument("--limit", type=int, default=None, help="images for the first CBR (default: all)")
    ap.add_argument("--limit-other", type=int, default=None, help="images for the other CBRs (default: all)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--frames", choices=FRAMES, default="tx_mask",
                    help="tx_mask: the frames the shipped refiner was trained on; shipped: the frames "
                         "medjscc-hda receives (the receiver learns the ROI mask where the split says so)")
    a = ap.parse_args(argv)
    try:
        snrs, cbrs = parse_spec(a.snr), parse_spec(a.cbrs)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    if a.data is None:   # the project's DRR set, rendered on first use as every command does
        from ..data import ensure_drr_dataset

        data = str(ensure_drr_dataset() / "train")
    else:
        data = a.data
    idx = precompute_bases(data, a.out, cbrs, snrs, a.limit, a.limit_other, a.workers, frames=a.frames)
    print(json.dumps(dict(entries=len(idx["entries"]), frames=a.frames, out=a.out)))


if __name__ == "__main__":
    try:
        main()
    except MedJSCCError as exc:
        raise SystemExit(f"error: {exc}")
