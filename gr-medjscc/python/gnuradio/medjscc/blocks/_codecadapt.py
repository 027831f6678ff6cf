"""Codec/ROI/image helpers for the JSCC blocks (thin, lazy imports: torch loads on first use)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InputError, MedJSCCError

log = logging.getLogger(__name__)


def get_codec(model="medjscc", device: str = "cpu", allow_random: bool = False):
    """``codec.load_codec(model)``; an object with encode/decode is returned as is.

    ``allow_random`` falls back to ``build_codec`` (random weights) when the weights are missing:
    for tests and flowgraph smoke runs only, and it logs a warning.
    """
    if hasattr(model, "encode") and hasattr(model, "decode"):
        return model
    from ..codec import load_codec

    try:
        return load_codec(model, device=device)
    except Exception as e:
        if not allow_random:
            raise
        from ..codec import build_codec

        log.warning("codec %r not loadable (%s): using RANDOM weights", model, e)
        return build_codec(model if isinstance(model, str) and not model.endswith(".pt") else "medjscc")


def read_image(path: str | Path) -> tuple[np.ndarray, object | None]:
    """Read an image as uint8 HxW; also returns the pydicom dataset when the file is DICOM."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"image file not found: {p}")
    ds = None
    try:
        import pydicom

        if pydicom.misc.is_dicom(str(p)):
            ds = pydicom.dcmread(str(p))
    except Exception:
        ds = None
    try:
        from ..data import read_image as data_read_image

        return data_read_image(p), ds
    except ImportError:
        pass
    try:
        from PIL import Image

        with Image.open(p) as im:
            return np.asarray(im.convert("L"), dtype=np.uint8), ds
    except Exception as e:
        raise InputError(f"cannot read image {p}: {e}") from None


def read_mask(path: str | Path, shape) -> np.ndarray:
    from PIL import Image

    p = Path(path)
    if not p.is_file():
        raise InputError(f"mask file not found: {p}")
    try:
        with Image.open(p) as im:
            m = np.asarray(im.convert("L")) > 127
    except Exception as e:
        raise InputError(f"cannot read mask {p}: {e}") from None
    if m.shape != tuple(shape):
        m = fit_image(m.astype(np.uint8) * 255, shape) > 127
    return m


def fit_image(image: np.ndarray, shape) -> np.ndarray:
    """Resize a uint8 image to ``shape`` (H, W) when it differs (the codec's fixed input size)."""
    if image.shape == tuple(shape):
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), Image.BILINEAR), np.uint8)


def write_outputs(image: np.ndarray, out_dir: str | Path, stem: str, dicom_template=None) -> list[Path]:
    """Write the decoded image as PNG (and DICOM when the source was DICOM)."""
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png"]
    Image.fromarray(image).save(paths[0])
    if dicom_template is not None:
        try:
            paths.append(_write_dicom(image, out / f"{stem}.dcm", dicom_template))
        except Exception as e:  # DICOM output is a convenience; the PNG is already there
            log.warning("could not write DICOM for %s: %s", stem, e)
    return paths


def _write_dicom(image: np.ndarray, path: Path, template) -> Path:
    import copy

    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = copy.deepcopy(template) if template is not None else None
    if ds is None:
        raise MedJSCCError("no DICOM template")
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = image.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(image, np.uint8).tobytes()
    for tag in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        if tag in ds:
            delattr(ds, tag)
    ds.DerivationDescription = "reconstructed by gr-medjscc deep JSCC receiver (lossy)"
    ds.LossyImageCompression = "01"
    pydicom.dcmwrite(str(path), ds, write_like_original=False)
    return path
