"""Thin adapter between the blocks and the pure-numpy phy core (``gnuradio.medjscc.phy``).

Keeps the blocks independent of small signature details of the phy core: OfdmParams built from
``OfdmConfig``-style keyword arguments, header construction from PDU metadata and back.
"""
from __future__ import annotations

import dataclasses
import inspect

import numpy as np

from ..config import OfdmConfig
from ..errors import MedJSCCError

HEADER_KEYS = ("seq", "image_id", "frame_count", "payload_len")
_PHY_HOMES = {"OfdmParams": "params", "FrameHeader": "header", "OfdmTransmitter": "ofdm",
              "OfdmReceiver": "ofdm", "RxFrame": "ofdm"}


def phy(name: str):
    """A phy-core class by name (package export first, else its home module)."""
    import importlib

    pkg = importlib.import_module("gnuradio.medjscc.phy")
    if hasattr(pkg, name):
        return getattr(pkg, name)
    return getattr(importlib.import_module(f"gnuradio.medjscc.phy.{_PHY_HOMES[name]}"), name)


def make_params(ofdm: OfdmConfig | dict | None = None, **overrides):
    """``phy.OfdmParams`` from an ``OfdmConfig`` (or dict), passing only the fields it accepts."""
    OfdmParams = phy("OfdmParams")
    if ofdm is None:
        values = {}
    elif isinstance(ofdm, dict):
        values = dict(ofdm)
    elif dataclasses.is_dataclass(ofdm) and not isinstance(ofdm, type):
        if type(ofdm).__name__ == "OfdmParams":
            return ofdm if not overrides else dataclasses.replace(ofdm, **overrides)
        values = dataclasses.asdict(ofdm)
    else:
        return ofdm
    values.update({k: v for k, v in overrides.items() if v is not None})
    values.pop("equalizer", None)
    try:
        accepted = set(inspect.signature(OfdmParams).parameters)
    except (TypeError, ValueError):
        accepted = set(values)
    # OfdmConfig's receiver-block fields (batching) are not phy parameters; anything else unknown
    # is a typo that must not silently fall back to a default
    unknown = sorted(set(values) - accepted - {f.name for f in dataclasses.fields(OfdmConfig)})
    if unknown:
        raise MedJSCCError(f"unknown OFDM parameter {unknown[0]!r} (known: {', '.join(sorted(accepted))})")
    kwargs = {k: v for k, v in values.items() if k in accepted}
    try:
        params = OfdmParams(**kwargs)
        return params.validate() if hasattr(params, "validate") else params
    except (TypeError, ValueError) as e:
        raise MedJSCCError(f"invalid OFDM parameters {kwargs}: {e}") from None


def header_from_meta(meta: dict):
    """``phy.FrameHeader`` from PDU metadata (``side_info_chunk`` as bytes or uint8 array)."""
    FrameHeader = phy("FrameHeader")
    missing = [k for k in HEADER_KEYS if k not in meta]
    if missing:
        raise ValueError(f"PDU metadata lacks header fields {missing}")
    chunk = meta.get("side_info_chunk", b"")
    if isinstance(chunk, np.ndarray):
        chunk = chunk.astype(np.uint8).tobytes()
    elif chunk is None:
        chunk = b""
    return FrameHeader(seq=int(meta["seq"]), image_id=int(meta["image_id"]),
                       frame_count=int(meta["frame_count"]), payload_len=int(meta["payload_len"]),
                       side_info_chunk=bytes(chunk),
                       side_info_total=int(meta.get("side_info_total", 0)),
                       nonce=int(meta.get("nonce", 0)), n_symbols=int(meta.get("n_symbols", 0)),
                       csi_tag=int(meta.get("csi_tag", 0)))


def meta_from_header(header) -> dict:
    meta = {k: int(getattr(header, k)) for k in HEADER_KEYS}
    meta["side_info_total"] = int(getattr(header, "side_info_total", 0))
    meta["side_info_chunk"] = bytes(getattr(header, "side_info_chunk", b"") or b"")
    meta["nonce"] = int(getattr(header, "nonce", 0))
    meta["n_symbols"] = int(getattr(header, "n_symbols", 0))
    meta["csi_tag"] = int(getattr(header, "csi_tag", 0))
    return meta


def effective_snr_db(frame) -> float | None:
    """SNR of an AWGN channel whose equaliser output is as good as this frame's: from the mean
    post-equaliser error over the data carriers (MMSE: 1/mse - 1, ZF: 1/mse). On a selective
    channel it is what the decoder sees; the mean of |H_k|^2/N0 (``snr_db``) overstates it."""
    nvc = getattr(frame, "noise_var_carriers", None)
    if nvc is None or not np.size(nvc):
        return None
    nvc = np.asarray(nvc, np.float64)
    nvc = nvc[np.isfinite(nvc)]
    if not nvc.size:
        return None
    mse = float(np.mean(nvc))
    snr = 1.0 / max(mse, 1e-12) - (1.0 if getattr(frame, "equalizer", "mmse") == "mmse" else 0.0)
    return float(10.0 * np.log10(max(snr, 1e-3)))


def meta_from_rxframe(frame) -> dict:
    """PDU metadata for one received frame (header fields only when its CRC passed)."""
    header = getattr(frame, "header", None)
    crc_ok = bool(getattr(frame, "crc_ok", header is not None)) and header is not None
    meta = meta_from_header(header) if crc_ok else {}
    meta["crc_ok"] = crc_ok
    for key in ("snr_db", "cfo", "n0", "payload_snr_db"):
        v = getattr(frame, key, None)
        if v is not None:
            meta[key] = float(v)
    eff = effective_snr_db(frame)
    if eff is not None:
        meta["eff_snr_db"] = eff
    if getattr(frame, "start_sample", None) is not None:
        meta["start_sample"] = int(frame.start_sample)
    if crc_ok and getattr(frame, "header_format", None):
        meta["header_format"] = str(frame.header_format)
    noise_var = getattr(frame, "noise_var", None)
    if noise_var is not None and np.size(noise_var):
        meta["noise_var"] = float(np.mean(noise_var))
        if hasattr(frame, "inv_snr"):   # per symbol, for CSI-aware decoding (jscc_rx)
            meta["inv_snr"] = frame.inv_snr()
    if crc_ok:   # per data carrier SNR after equalisation: what a carrier ranking is fed back from
        from ..phy.csi import carrier_snr_db

        csnr = carrier_snr_db(getattr(frame, "noise_var_carriers", []), getattr(frame, "equalizer", "mmse"))
        if csnr is not None:
            meta["carrier_snr_db"] = csnr
    taps = getattr(frame, "chan_taps", None)
    if taps is not None:
        meta["chan_taps"] = np.asarray(taps, dtype=np.complex64)
    erased = getattr(frame, "erased", None)
    if erased is not None and np.any(erased):
        meta["erased"] = np.asarray(erased, dtype=np.uint8)  # truncated frame: symbols cut off
    return meta
