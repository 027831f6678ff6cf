"""Names of a sweep's output files: CBR labels, reconstruction paths, the montage's SNR columns.

Kept apart from ``sweep`` so that ``plots`` and ``report`` can name files without importing the
sweep runner (no import cycle)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

MONTAGE_COLUMNS = 6   # SNR columns of the montage at most (evenly spread over the swept SNRs)


def montage_snrs(snrs) -> list[float]:
    """The swept SNRs the montage shows: all of them, or MONTAGE_COLUMNS evenly spread (ends kept)."""
    s = sorted({float(x) for x in snrs})
    if len(s) <= MONTAGE_COLUMNS:
        return s
    idx = np.round(np.linspace(0, len(s) - 1, MONTAGE_COLUMNS)).astype(int)
    return [s[i] for i in sorted(set(idx.tolist()))]


def cbr_label(cbr: float) -> str:
    """1/16 -> "1_16" (a file-name-safe fraction), otherwise the number."""
    f = Fraction(cbr).limit_denominator(4096)
    return f"{f.numerator}_{f.denominator}" if abs(float(f) - cbr) < 1e-9 else f"{cbr:g}"


def recon_tag(method: str, mcs: str, snr_db: float, cbr: float) -> str:
    return f"{method}{'_' + mcs.replace('/', '') if mcs else ''}_snr{float(snr_db):g}_cbr{cbr_label(cbr)}"


def recon_path(out: Path, image_name: str, method: str, mcs: str, snr_db: float, cbr: float) -> Path:
    return out / "recon" / image_name / f"{recon_tag(method, mcs, snr_db, cbr)}.png"
