"""PMT <-> Python helpers shared by the Med-JSCC blocks.

PDUs are ``(meta_dict . vector)`` pairs. Metadata values may be numpy scalars, numpy arrays,
``bytes`` or nested dicts; ``pmt.to_pmt`` rejects numpy scalars and bytes, so convert here.
"""
from __future__ import annotations

import math

import numpy as np
import pmt

_VEC_MAKERS = {
    np.dtype(np.complex64): pmt.init_c32vector,
    np.dtype(np.float32): pmt.init_f32vector,
    np.dtype(np.float64): pmt.init_f64vector,
    np.dtype(np.uint8): pmt.init_u8vector,
    np.dtype(np.int32): pmt.init_s32vector,
}


def to_pmt(value):
    """Convert a Python/numpy value to PMT (bytes -> u8vector, numpy scalars -> PMT numbers)."""
    if isinstance(value, pmt.pmt_python.pmt_base):
        return value
    if value is None:
        return pmt.PMT_NIL
    if isinstance(value, (bool, np.bool_)):
        return pmt.from_bool(bool(value))
    if isinstance(value, (int, np.integer)):
        return pmt.from_long(int(value))
    if isinstance(value, (float, np.floating)):
        return pmt.from_double(float(value))
    if isinstance(value, complex):
        return pmt.from_complex(value)
    if isinstance(value, str):
        return pmt.intern(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = np.frombuffer(bytes(value), dtype=np.uint8)
        return pmt.init_u8vector(len(data), data.tolist())
    if isinstance(value, np.ndarray):
        arr = value.ravel()
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8)
        elif np.iscomplexobj(arr):
            arr = arr.astype(np.complex64)
        elif arr.dtype.kind == "f" and arr.dtype != np.float64:
            arr = arr.astype(np.float32)
        elif arr.dtype.kind in "iu" and arr.dtype != np.uint8:
            arr = arr.astype(np.int32)
        if arr.dtype == np.uint8 or arr.size <= 1:  # pybind converts these element-wise: give it a list
            return _VEC_MAKERS[arr.dtype](len(arr), arr.tolist())
        return _VEC_MAKERS[arr.dtype](len(arr), arr)
    if isinstance(value, dict):
        d = pmt.make_dict()
        for k, v in value.items():
            d = pmt.dict_add(d, pmt.intern(str(k)), to_pmt(v))
        return d
    if isinstance(value, (list, tuple)):
        return pmt.to_pmt(type(value)(to_python(to_pmt(v)) for v in value))
    return pmt.to_pmt(value)


def to_python(value):
    return pmt.to_python(value)


def make_pdu(meta: dict, data: np.ndarray):
    """Build a PDU from a metadata dict and a numpy vector (complex64, float32, uint8)."""
    return pmt.cons(to_pmt(dict(meta)), to_pmt(np.asarray(data)))


def split_pdu(msg):
    """Return ``(meta: dict, data: np.ndarray | None)``; raise ValueError on a non-PDU."""
    if not pmt.is_pair(msg):
        raise ValueError("message is not a PDU (meta . vector) pair")
    meta_p, data_p = pmt.car(msg), pmt.cdr(msg)
    meta = pmt.to_python(meta_p) if pmt.is_dict(meta_p) else {}
    meta = dict(meta or {})
    data = pmt.to_python(data_p) if pmt.is_uniform_vector(data_p) else None
    return meta, data


def complex_pdu(msg):
    """``(meta, complex data)`` of a PDU carrying complex samples, else None (dropped quietly:
    a stray message must never stop a flowgraph)."""
    try:
        meta, data = split_pdu(msg)
    except ValueError:
        return None
    if data is None or not np.iscomplexobj(data):
        return None
    return meta, data


def snr_from_message(msg) -> float | None:
    """Extract an SNR in dB from a number, a dict with ``snr_db``, or a PDU whose meta has it."""
    try:
        if pmt.is_number(msg) and not pmt.is_complex(msg):
            value = pmt.to_double(msg)
        else:
            if pmt.is_pair(msg) and not pmt.is_dict(msg):
                msg = pmt.car(msg)
            if not pmt.is_dict(msg):
                return None
            key = pmt.intern("snr_db")
            if not pmt.dict_has_key(msg, key):
                return None
            v = pmt.dict_ref(msg, key, pmt.PMT_NIL)
            if not pmt.is_number(v):
                return None
            value = pmt.to_double(v)
    except Exception:  # malformed PMT: treat as "no SNR in it"
        return None
    return value if math.isfinite(value) else None
