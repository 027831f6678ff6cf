"""Image folders (real X-ray sets) as data sets: ``images/`` + optional ``masks/`` matched by stem.

Layout
------
::

    ROOT/
      images/   <stem>.png | .jpg | .jpeg | .tif | .tiff | .bmp | .pgm | .dcm | .dicom
      masks/    <stem>.png (or <stem>_mask.png, any supported format)        [optional]
                masks may also sit in sub-folders of masks/ (e.g. masks/left/, masks/right/ as
                in the Montgomery set); every mask found for a stem is OR-ed into one mask.

* Chest sets (Shenzhen, Montgomery, JSRT/SCR style): put the radiographs in ``images/`` and the
  lung masks in ``masks/``; left and right lung masks are merged (one file with both lungs, or
  one file per lung in ``masks/left`` + ``masks/right``). Shenzhen's ``<stem>_mask.png`` naming
  is recognised.
* Dental panoramic sets: radiographs in ``images/``; the ROI (e.g. teeth, a lesion) as a binary
  mask in ``masks/``; without masks the ROI segmenter (or no ROI) is used downstream.

Reading (:func:`read_image`) gives 8-bit grey (``np.uint8`` HxW):

* 8-bit grey PNG/JPEG/TIFF/BMP: as stored. Colour / palette / alpha images: ITU-R 601 luma.
* 16-bit / 32-bit integer and float images (e.g. 12-bit radiographs in 16-bit PNG or TIFF):
  min-max scaled to 0..255 per image (a constant image becomes all zero).
* DICOM (pydicom; 8/12/16-bit, any transfer syntax pydicom can decode): modality LUT (rescale
  slope/intercept), then the VOI LUT sequence if present, else the first window centre/width
  (LINEAR, LINEAR_EXACT or SIGMOID per the standard), else min-max; MONOCHROME1 is inverted so
  that bone is always bright. Multi-frame: the first frame. Colour DICOM: luma.

Masks: any format above; a pixel is in the ROI when its value is > 0 (so 0/1 and 0/255 masks both
work). A mask whose size differs from its image is an error naming both files.

Checks: an image smaller than ``MIN_IMAGE_SIDE`` (16) pixels on a side is an error (upscaling it
would send made-up detail); NaN or infinite pixels (float TIFF, float DICOM, a modality LUT that
overflows) are an error naming the file and the count (never silently black).

This is the one image reader: ``codec.datasets`` (eval, train), the JSCC blocks (tx, rx), the ROI
tools and the demo all read through :func:`read_image` / :func:`read_mask`.

Size policy (``resize``), applied identically to image and mask:

* ``"pad"`` (default): keep the aspect ratio, scale so the longer side is ``size`` (area averaging
  when shrinking, bilinear when enlarging), then pad both sides of the shorter one with black
  (mask: background) to ``size`` x ``size``.
* ``"resize"``: stretch to ``size`` x ``size`` (aspect ratio not kept).
* ``"none"`` (or ``size=None``): native size, any HxW.

Resized masks are resampled like the image and thresholded at one half.

Bad input raises :class:`~gnuradio.medjscc.errors.InputError` naming the file: missing or
unreadable image, malformed DICOM, no ``images/`` sub-folder, no images in it, mask size mismatch.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm", ".dcm", ".dicom")
DICOM_EXTS = (".dcm", ".dicom")
RESIZE_POLICIES = ("pad", "resize", "none")
MASK_SUFFIXES = ("_mask", "-mask", "_masks")
MIN_IMAGE_SIDE = 16   # the codec's patch size: anything smaller carries no usable image


# --------------------------------------------------------------------------------------------
# reading single files
# --------------------------------------------------------------------------------------------
def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() in DICOM_EXTS:
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
        return len(head) == 132 and head[128:132] == b"DICM"
    except OSError:
        return False


def _require_finite(arr: np.ndarray, path: Path) -> None:
    """NaN/inf pixels are an error: no grey level is a faithful stand-in for them."""
    if np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.complexfloating):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise InputError(f"image file {path} has {bad} NaN/infinite pixel(s) of {arr.size}; "
                             f"replace them (e.g. with the background value) before use")


def _to_uint8_minmax(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        return np.zeros(arr.shape, dtype=np.uint8)
    lo, hi = float(arr[finite].min()), float(arr[finite].max())
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    out = np.where(finite, (arr - lo) / (hi - lo), 0.0)
    return np.round(out * 255.0).astype(np.uint8)


def _luma(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float64)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _first_value(value) -> float:
    try:
        return float(value[0])
    except (TypeError, IndexError, KeyError):
        return float(value)


def _window_unit(arr: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 VOI windowing, output scaled to [0, 1]."""
    function = (function or "LINEAR").upper()
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (arr - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((arr - center) / width + 0.5, 0.0, 1.0)
    if width < 1:
        raise ValueError(f"window width {width} < 1")
    return np.clip((arr - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0)


def _voi_lut_unit(arr: np.ndarray, item) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.1 VOI LUT: table look-up (clamped at both ends), scaled to [0, 1]."""
    n_entries, first, bits = (int(v) for v in item.LUTDescriptor)
    n_entries = n_entries or 65536           # 0 means 2**16 entries
    data = item.LUTData
    if isinstance(data, (bytes, bytearray)):
        table = np.frombuffer(data, dtype="<u2" if bits > 8 or len(data) == 2 * n_entries else "u1")
    else:
        table = np.asarray(data if not np.isscalar(data) else [data], dtype=np.float64)
    table = np.asarray(table[:n_entries], dtype=np.float64)
    idx = np.clip(np.round(arr).astype(np.int64) - first, 0, len(table) - 1)
    return table[idx] / float(2 ** bits - 1)


def _read_dicom(path: Path) -> np.ndarray:
    import pydicom
    from pydicom.pixels import apply_modality_lut

    try:
        ds = pydicom.dcmread(str(path))
    except Exception as e:  # pydicom raises many types for truncated / odd files
        raise InputError(f"malformed DICOM file {path}: {e}") from None
    try:
        arr = ds.pixel_array
    except Exception as e:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        e = " ".join(str(e).split())    # pydicom lists each plugin's error on its own line
        if syntax is not None and syntax.is_compressed:
            # a compressed image we cannot decode is not a malformed file: say which decoder to add
            raise InputError(f"cannot decode the {syntax.name} pixel data of DICOM file {path}: {e}. "
                             f"pydicom decodes JPEG baseline and JPEG 2000 with Pillow and JPEG-LS / "
                             f"JPEG extended with pylibjpeg + pylibjpeg-libjpeg (installed by make setup; "
                             f"pip install pylibjpeg pylibjpeg-libjpeg)") from None
        raise InputError(f"malformed DICOM file {path}: {e}") from None
    if "PixelData" not in ds:
        raise InputError(f"malformed DICOM file {path}: no pixel data")
    try:
        samples = int(ds.get("SamplesPerPixel", 1))
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames > 1:
            arr = arr[0]
        _require_finite(np.asarray(arr), path)
        if samples > 1:
            return _to_uint8_minmax(_luma(arr))
        arr = apply_modality_lut(arr, ds).astype(np.float64)
        _require_finite(arr, path)
        if "VOILUTSequence" in ds and len(ds.VOILUTSequence):
            unit = _voi_lut_unit(arr, ds.VOILUTSequence[0])
        elif "WindowCenter" in ds and "WindowWidth" in ds:
            unit = _window_unit(arr, _first_value(ds.WindowCenter), _first_value(ds.WindowWidth),
                                str(ds.get("VOILUTFunction", "LINEAR")))
        else:
            unit = None
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"malformed DICOM file {path}: cannot apply its LUTs ({e})") from None
    image = _to_uint8_minmax(arr) if unit is None else np.round(np.clip(unit, 0, 1) * 255).astype(np.uint8)
    if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper() == "MONOCHROME1":
        image = 255 - image   # MONOCHROME1: high values are dark; we always show bone bright
    return image


def _read_raster(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.seek(0)   # multi-page TIFF: first page
            mode = im.mode
            if mode == "L":
                return np.array(im, dtype=np.uint8)
            if mode in ("1", "P", "PA", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
                if mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA"):
                    return np.round(_luma(np.array(im.convert("RGB")))).astype(np.uint8)
                return np.array(im.convert("L"), dtype=np.uint8)
            arr = np.array(im)   # I;16, I;16B, I, F, ...
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise InputError(f"unreadable image file {path}: {e}") from None
    _require_finite(arr, path)
    if arr.ndim == 3:
        arr = _luma(arr[..., :3])
    if arr.dtype == np.uint8:
        return arr
    return _to_uint8_minmax(arr)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read one radiograph (PNG/JPEG/TIFF/BMP/DICOM) as ``np.uint8`` HxW (see module doc)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file not found: {path}")
    image = _read_dicom(path) if _is_dicom(path) else _read_raster(path)
    if image.ndim != 2 or image.size == 0:
        raise InputError(f"image file {path} has no 2-D pixel data (shape {image.shape})")
    if min(image.shape) < MIN_IMAGE_SIDE:
        raise InputError(f"image file {path} is {image.shape[1]}x{image.shape[0]} pixels; at least "
                         f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} is needed")
    return np.ascontiguousarray(image)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a binary mask file (any format of :func:`read_image`): ``np.bool_`` HxW, value > 0."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"mask file not found: {path}")
    if _is_dicom(path):
        return _read_dicom(path) > 0
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            arr = np.array(im)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise InputError(f"unreadable mask file {path}: {e}") from None
    if arr.ndim == 3:
        arr = arr[..., :3].max(axis=-1) if arr.shape[-1] >= 3 else arr[..., 0]
    return arr > 0


# --------------------------------------------------------------------------------------------
# size policy
# --------------------------------------------------------------------------------------------
def _resample(arr: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    h, w = arr.shape
    if (h, w) == tuple(out_hw):
        return arr
    shrink = out_hw[0] < h or out_hw[1] < w
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    res = Image.fromarray(arr).resize((out_hw[1], out_hw[0]), method)
    return np.array(res)


def fit_to_size(image: np.ndarray, mask: np.ndarray | None, size: int | None,
                resize: str = "pad") -> tuple[np.ndarray, np.ndarray | None]:
    """Apply the size policy (``pad`` | ``resize`` | ``none``) to an image and its mask."""
    if resize not in RESIZE_POLICIES:
        raise InputError(f"resize must be one of {RESIZE_POLICIES}, got {resize!r}")
    if resize == "none" or size is None:
        return image, mask
    size = int(size)
    if size < 1:
        raise InputError(f"size must be positive, got {size}")
    h, w = image.shape
    if resize == "resize":
        out_hw = (size, size)
    else:
        scale = size / max(h, w)
        out_hw = (max(1, round(h * scale)), max(1, round(w * scale)))
    image = _resample(image, out_hw)
    if mask is not None:
        mask = _resample(mask.astype(np.uint8) * 255, out_hw) >= 128
    if resize == "pad" and out_hw != (size, size):
        top = (size - out_hw[0]) // 2
        left = (size - out_hw[1]) // 2
        pad = ((top, size - out_hw[0] - top), (left, size - out_hw[1] - left))
        image = np.pad(image, pad, constant_values=0)
        if mask is not None:
            mask = np.pad(mask, pad, constant_values=False)
    return image, mask


# --------------------------------------------------------------------------------------------
# data set
# --------------------------------------------------------------------------------------------
def _mask_stem(path: Path) -> str:
    stem = path.stem
    for suffix in MASK_SUFFIXES:
        if stem.lower().endswith(suffix):
            return stem[: -len(suffix)]
    return stem


class ImageFolderDataset:
    """Radiographs in ``root/images`` with optional masks in ``root/masks`` (see module doc).

    ``ds[i]`` -> ``dict(image=np.uint8 HxW, mask=np.bool_ HxW | None, name=str,
    source_path=str)``; ``name`` is the file stem. Files are read lazily, in sorted order.
    """

    def __init__(self, root: str | os.PathLike, size: int | None = 256, resize: str = "pad",
                 limit: int | None = None):
        self.root = Path(root)
        self.size = size
        if resize not in RESIZE_POLICIES:
            raise InputError(f"resize must be one of {RESIZE_POLICIES}, got {resize!r}")
        self.resize = resize
        if not self.root.is_dir():
            raise InputError(f"data folder not found: {self.root}")
        image_dir = self.root / "images"
        if not image_dir.is_dir():
            raise InputError(f"no images/ sub-folder in {self.root} "
                             f"(expected {self.root}/images/ and optionally {self.root}/masks/)")
        files = sorted(p for p in image_dir.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))
        if not files:
            raise InputError(f"no images ({', '.join(IMAGE_EXTS)}) in {image_dir}")
        stems: dict[str, Path] = {}
        for p in files:
            if p.stem in stems:
                raise InputError(f"two images with the same name stem in {image_dir}: "
                                 f"{stems[p.stem].name} and {p.name}")
            stems[p.stem] = p
        self.masks: dict[str, list[Path]] = {}
        mask_dir = self.root / "masks"
        if mask_dir.is_dir():
            for p in sorted(mask_dir.rglob("*")):
                if not p.is_file() or p.suffix.lower() not in IMAGE_EXTS or p.name.startswith("."):
                    continue
                stem = p.stem if p.stem in stems else _mask_stem(p)
                if stem in stems:
                    self.masks.setdefault(stem, []).append(p)
                else:
                    log.debug("mask %s has no matching image in %s", p, image_dir)
        self.files = files[:limit] if limit is not None else files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self.files)
        if not 0 <= index < len(self.files):
            raise IndexError(index)
        path = self.files[index]
        image = read_image(path)
        mask = None
        for mpath in self.masks.get(path.stem, []):
            m = read_mask(mpath)
            if m.shape != image.shape:
                raise InputError(f"mask {mpath} is {m.shape[1]}x{m.shape[0]} but its image {path} "
                                 f"is {image.shape[1]}x{image.shape[0]} (width x height)")
            mask = m if mask is None else (mask | m)
        image, mask = fit_to_size(image, mask, self.size, self.resize)
        return {"image": image, "mask": mask, "name": path.stem, "source_path": str(path)}

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return (f"ImageFolderDataset({str(self.root)!r}, n={len(self)}, size={self.size}, "
                f"resize={self.resize!r}, masks={len(self.masks)})")
