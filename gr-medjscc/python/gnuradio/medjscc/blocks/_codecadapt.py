"""Codec/ROI/image helpers for the JSCC blocks (thin, lazy imports: torch loads on first use)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InputError, MedJSCCError

log = logging.getLogger(__name__)


def get_codec(model="medjscc", device: str = "cpu", allow_random: bool = False):
    """``codec.load_codec(model)``; an object with encode/decode is returned as is.

    ``allow_random`` falls back to ``build_codec`` (random weights) when the weights file does not
    exist (never when it exists but fails its checksum or does not load): for tests and flowgraph
    smoke runs only, and it logs a warning.
    """
    if hasattr(model, "encode") and hasattr(model, "decode"):
        return model
    from ..codec import load_codec

    try:
        return load_codec(model, device=device)
    except Exception as e:
        # only a model that is not there falls back; a damaged or tampered file (checksum, format)
        # is an error even in smoke tests
        from ..codec.api import resolve_weights

        try:
            missing = not resolve_weights(model).is_file()
        except MedJSCCError:
            missing = True
        if not allow_random or not missing:
            raise
        from ..codec import build_codec

        log.warning("codec %r not loadable (%s): using RANDOM weights", model, e)
        return build_codec(model if isinstance(model, str) and not model.endswith(".pt") else "medjscc")


def read_image(path: str | Path) -> tuple[np.ndarray, object | None]:
    """Read an image as uint8 HxW with the data package's reader (one policy for all tools);
    also returns the pydicom dataset when the file is DICOM (the template of DICOM outputs)."""
    from ..data import read_image as data_read_image

    p = Path(path)
    image = data_read_image(p)   # InputError naming the file: missing, unreadable, tiny, NaN...
    ds = None
    try:
        import pydicom

        if pydicom.misc.is_dicom(str(p)):
            ds = pydicom.dcmread(str(p))
    except Exception as e:   # the pixels were readable; only DICOM output is lost
        log.warning("cannot read the DICOM header of %s (%s): no DICOM output", p, e)
        ds = None
    return image, ds


def read_mask(path: str | Path, shape, image_path: str | Path | None = None,
              image_shape=None) -> np.ndarray:
    """ROI mask (any non-zero pixel is ROI, as the data reader reads it) for an image of ``shape``.

    The mask must have the size of the image it belongs to: ``image_shape`` (the image as read,
    before fitting; it is then fitted to ``shape`` exactly as its image is), or ``shape`` itself
    when ``image_shape`` is not given. A mask of any other size is an :class:`InputError` naming
    the mask file, its size, the image (``image_path``) and the image's size: stretching it would
    put the ROI on the wrong anatomy without a word.
    """
    from ..data import read_mask as data_read_mask

    m = data_read_mask(path)
    want = tuple(int(n) for n in (image_shape if image_shape is not None else shape))
    if m.shape != want:
        image = f"its image {image_path}" if image_path else "the image it belongs to"
        raise InputError(f"mask {path} is {m.shape[1]}x{m.shape[0]} but {image} is "
                         f"{want[1]}x{want[0]} (width x height); give the mask of that image")
    if m.shape != tuple(shape):
        m = fit_image(m.astype(np.uint8) * 255, shape) >= 128
    return m


def fit_image(image: np.ndarray, shape) -> np.ndarray:
    """Fit a uint8 image to ``shape`` (H, W), the codec's input size, keeping the aspect ratio.

    A square target uses the data reader's ``pad`` policy (scale the longer side to fit, pad the
    shorter one with black on both sides), so a non-square radiograph is never stretched; tx, the
    reference of rx and its masks all go through here, so they stay aligned. A non-square target
    (not used by the blocks) is stretched.
    """
    if image.shape == tuple(shape):
        return image
    if shape[0] == shape[1]:
        from ..data import fit_to_size

        return np.ascontiguousarray(fit_to_size(np.asarray(image, np.uint8), None, int(shape[0]), "pad")[0],
                                    np.uint8)
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), Image.BILINEAR), np.uint8)


def write_outputs(image: np.ndarray, out_dir: str | Path, stem: str, dicom_template=None, *,
                  keep_identifiers: bool | None = None, cbr: float | None = None) -> list[Path]:
    """Write the decoded image as PNG (and DICOM when the source was DICOM).

    The DICOM is de-identified (:func:`deidentify`) unless ``keep_identifiers`` is true.
    ``dicom_template`` is a pydicom dataset or a :class:`DicomTemplate` (which carries
    ``keep_identifiers`` / ``cbr`` for callers that cannot pass them here).
    """
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png"]
    Image.fromarray(image).save(paths[0])
    if dicom_template is not None:
        if not isinstance(dicom_template, DicomTemplate):
            dicom_template = DicomTemplate(dicom_template)
        if keep_identifiers is not None or cbr is not None:
            dicom_template = DicomTemplate(
                dicom_template.dataset,
                dicom_template.keep_identifiers if keep_identifiers is None else bool(keep_identifiers),
                dicom_template.cbr if cbr is None else cbr, dicom_template.resize)
        try:
            paths.append(_write_dicom(image, out / f"{stem}.dcm", dicom_template))
        except Exception as e:  # DICOM output is a convenience; the PNG is already there
            log.warning("could not write DICOM for %s: %s", stem, e)
    return paths


# --------------------------------------------------------------------------------------------
# DICOM output: de-identified (PS3.15 Annex E, Basic Application Level Confidentiality Profile)
# --------------------------------------------------------------------------------------------
class DicomTemplate:
    """The reference DICOM plus how to write outputs from it.

    keep_identifiers: copy the patient/study identity (names, IDs, dates, study UID, institution)
        from the reference; off by default -- the output is de-identified.
    cbr: channel symbols per pixel of the link (gives ``LossyImageCompressionRatio`` = 1/cbr).
    resize: how the transmitter fitted the image to the codec size (``pad`` = keep the aspect
        ratio, as :func:`fit_image` does; ``resize`` = stretch per axis), for the pixel spacing.
    """

    def __init__(self, dataset, keep_identifiers: bool = False, cbr: float | None = None,
                 resize: str = "pad"):
        if isinstance(dataset, DicomTemplate):
            dataset = dataset.dataset
        self.dataset = dataset
        self.keep_identifiers = bool(keep_identifiers)
        self.cbr = None if cbr is None else float(cbr)
        self.resize = resize


# A whitelist, not a blacklist: only these non-identifying attributes are copied from the reference
# (everything else, private tags and sequences included, is dropped), so no identifier in an
# attribute we did not think of can leak. Spacing attributes are copied rescaled.
_KEEP_ATTRIBUTES = ("Modality", "BodyPartExamined", "ViewPosition", "PatientOrientation",
                    "ImageLaterality", "Laterality", "PixelSpacingCalibrationType",
                    "EstimatedRadiographicMagnificationFactor", "BurnedInAnnotation")
_SPACING_ATTRIBUTES = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing")
# copied only with keep_identifiers (Patient, General Study and the identifying equipment fields)
_IDENTITY_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
                        "OtherPatientIDsSequence", "StudyInstanceUID", "StudyDate", "StudyTime",
                        "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription",
                        "SeriesDate", "SeriesTime", "ContentDate", "ContentTime", "InstitutionName",
                        "InstitutionAddress", "StationName", "DeviceSerialNumber", "Manufacturer",
                        "ManufacturerModelName")
_DEID_METHOD = "PS3.15 Basic Profile (gr-medjscc attribute whitelist)"   # LO: <= 64 characters
# one random salt per process: the same reference study/series maps to the same new UIDs within a
# run (images stay grouped) but cannot be linked back to the original UID by re-hashing it
_UID_SALT = None


def _new_uid(original, kind: str) -> str:
    import secrets

    from pydicom.uid import generate_uid

    global _UID_SALT
    if _UID_SALT is None:
        _UID_SALT = secrets.token_hex(16)
    if not original:
        return generate_uid()
    return generate_uid(entropy_srcs=[_UID_SALT, kind, str(original)])


def _scaled_spacing(value, src_hw, dst_hw, resize: str):
    """Spacing (row, column) in mm of the output pixels, from the reference's and the two sizes."""
    try:
        row, col = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if resize == "pad":   # one scale for both axes: the longer side was fitted
        f = max(src_hw) / max(dst_hw)
        fr = fc = f
    else:                 # stretched: each axis on its own
        fr, fc = src_hw[0] / dst_hw[0], src_hw[1] / dst_hw[1]
    return [f"{row * fr:.10g}", f"{col * fc:.10g}"]   # DS: at most 16 characters


def deidentify(image: np.ndarray, template: "DicomTemplate"):
    """A new DICOM dataset (Secondary Capture) holding ``image``, built from the reference.

    The reconstruction is an 8-bit display image derived by lossy transmission, so it is stored as
    Secondary Capture (the reference's IOD, e.g. CT with Hounsfield units, no longer applies), with
    ImageType DERIVED\\SECONDARY, LossyImageCompression 01 (+ ratio and method), new Study/Series/SOP
    UIDs, PatientIdentityRemoved YES and DeidentificationMethod (+ code 113100). Only
    :data:`_KEEP_ATTRIBUTES` and the rescaled pixel spacing come from the reference; with
    ``keep_identifiers`` the patient and study identity are copied as well.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    src = template.dataset
    image = np.ascontiguousarray(image, np.uint8)
    ds = Dataset()
    for name in _KEEP_ATTRIBUTES:
        if name in src:
            ds[name] = src[name]
    src_hw = (int(src.get("Rows", 0) or 0), int(src.get("Columns", 0) or 0))
    if min(src_hw) > 0:
        for name in _SPACING_ATTRIBUTES:
            if name in src:
                v = _scaled_spacing(src[name].value, src_hw, image.shape, template.resize)
                if v is not None:
                    setattr(ds, name, v)
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        log.warning("reference DICOM has burned-in annotation: the output pixels may show identifying text")
    if template.keep_identifiers:
        for name in _IDENTITY_ATTRIBUTES:
            if name in src:
                ds[name] = src[name]
        if "SpecificCharacterSet" in src:   # copied names may need it
            ds.SpecificCharacterSet = src.SpecificCharacterSet
        ds.PatientIdentityRemoved = "NO"
    else:
        # Type 2 attributes of the Patient and General Study modules: present, zero length (Z)
        for name in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
                     "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber"):
            setattr(ds, name, "")
        ds.StudyInstanceUID = _new_uid(src.get("StudyInstanceUID"), "study")
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = _DEID_METHOD
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
        code.CodeMeaning = "Basic Application Confidentiality Profile"
        ds.DeidentificationMethodCodeSequence = [code]
        ds.LongitudinalTemporalInformationModified = "REMOVED"
    ds.setdefault("Modality", "OT")
    ds.SeriesInstanceUID = _new_uid(src.get("SeriesInstanceUID"), "series")   # a derived series
    ds.SeriesNumber = ""
    ds.InstanceNumber = ""
    ds.ConversionType = "WSD"
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ratio = None if not template.cbr else 1.0 / template.cbr
    ds.DerivationDescription = (
        "reconstructed by the gr-medjscc deep JSCC receiver (lossy analog transmission"
        + (f", {template.cbr:.6g} channel symbols per pixel" if ratio else "") + ")")
    ds.LossyImageCompression = "01"
    if ratio:   # JSCC has no bit stream: the ratio is pixels per channel symbol (1/CBR)
        ds.LossyImageCompressionRatio = f"{ratio:.6g}"
    ds.LossyImageCompressionMethod = "GR_MEDJSCC"
    ds.Rows, ds.Columns = image.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = image.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    pydicom.dataset.validate_file_meta(ds.file_meta, enforce_standard=True)
    return ds


def _write_dicom(image: np.ndarray, path: Path, template) -> Path:
    if template is None:
        raise MedJSCCError("no DICOM template")
    if not isinstance(template, DicomTemplate):
        template = DicomTemplate(template)
    ds = deidentify(image, template)
    ds.save_as(str(path), enforce_file_format=True)
    return path
