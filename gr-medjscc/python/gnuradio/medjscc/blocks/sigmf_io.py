"""SigMF capture/replay of received IQ (``medjscc rx --record DIR`` / ``--replay FILE``).

A recording is ``<name>.sigmf-data`` (cf32_le, as the receiver saw it) + ``<name>.sigmf-meta``
with the sample rate, centre frequency, the hardware configuration (``medjscc:hw_config``), the
OFDM layout (``medjscc:ofdm``) and one annotation per received frame (start, length, label and
``medjscc:`` seq / image_id / snr_db / cfo / crc_ok).

The hardware configuration is recorded without what identifies the radio or its network (the
values of ``serial=`` / ``addr=`` / ``name=`` ... in the UHD ``args`` or any other text field, and
IPv4 addresses) unless ``hw_identity=True`` (``medjscc rx --record-hw-identity``): recordings get
shared.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InputError

NS = "medjscc"
# UHD device-arg keys that identify one radio or its network
_IDENTITY_RE = re.compile(r"\b(serial|addr\d*|mgmt_addr|second_addr|name|resource|ip)\s*=\s*[^,\s]+",
                          re.IGNORECASE)
_IPV4_RE = re.compile(r"\b\d{1,3}(\.\d{1,3}){3}\b")


def public_hw_config(hw_config: dict, hw_identity: bool = False) -> dict:
    """The hw config as recorded: no ``_`` keys; without ``hw_identity`` the values of identifying
    ``key=value`` device args (``serial=<removed>``) and IPv4 addresses in text fields replaced."""
    out = {k: v for k, v in hw_config.items() if not str(k).startswith("_")}
    if hw_identity:
        return out
    for k, v in list(out.items()):
        if isinstance(v, str):
            out[k] = _IPV4_RE.sub("<address>", _IDENTITY_RE.sub(lambda m: f"{m.group(1)}=<removed>", v))
    return out


def write_recording(data_path: str | Path, sample_rate: float, center_freq: float,
                    hw_config: dict | None = None, annotations=(), ofdm: dict | None = None,
                    description: str = "", hw_identity: bool = False) -> Path:
    """Write ``<data>.sigmf-meta`` next to an existing cf32 data file; returns the meta path.

    ``hw_identity``: keep the radio's serial / network address in ``medjscc:hw_config``.
    """
    from sigmf import SigMFFile

    data_path = Path(data_path)
    meta_path = data_path.with_suffix(".sigmf-meta")
    glob = {"core:datatype": "cf32_le", "core:sample_rate": float(sample_rate),
            "core:recorder": "gr-medjscc", "core:description": description or "gr-medjscc received IQ"}
    if hw_config:
        glob[f"{NS}:hw_config"] = public_hw_config(hw_config, hw_identity)
    if ofdm:
        glob[f"{NS}:ofdm"] = dict(ofdm)
    rec = SigMFFile(data_file=str(data_path), global_info=glob)
    rec.add_capture(0, metadata={"core:frequency": float(center_freq)})
    for a in annotations:
        md = {"core:label": f"frame seq {a.get('seq', '?')} image {a.get('image_id', '?')}"}
        for k in ("seq", "image_id", "snr_db", "cfo", "crc_ok"):
            if k in a:
                v = a[k]
                md[f"{NS}:{k}"] = bool(v) if k == "crc_ok" else (float(v) if k in ("snr_db", "cfo") else int(v))
        rec.add_annotation(int(a["start"]), int(a["length"]), metadata=md)
    rec.tofile(str(meta_path))
    return meta_path


def read_recording(meta_path: str | Path) -> tuple[np.ndarray, dict]:
    """Samples (complex64) and an info dict (sample_rate, center_freq, hw_config, ofdm, annotations)."""
    from sigmf import sigmffile

    p = Path(meta_path)
    if not p.is_file():
        raise InputError(f"SigMF metadata file not found: {p}")
    try:
        rec = sigmffile.fromfile(str(p))
        samples = np.asarray(rec.read_samples(), np.complex64).reshape(-1)
    except Exception as e:
        raise InputError(f"cannot read SigMF recording {p}: {e}") from None
    glob = rec.get_global_info()
    caps = rec.get_captures()
    info = {"sample_rate": glob.get("core:sample_rate"),
            "center_freq": caps[0].get("core:frequency") if caps else None,
            "hw_config": glob.get(f"{NS}:hw_config"), "ofdm": glob.get(f"{NS}:ofdm"),
            "annotations": rec.get_annotations()}
    return samples, info
