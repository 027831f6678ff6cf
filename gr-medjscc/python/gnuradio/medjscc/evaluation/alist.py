"""MacKay alist files (the parity-check matrix format gr-fec uses): read and write.

Apart from ``ldpc`` so that the code generator (``codes/generate_80211n``) writes files without
importing the decoder that, in turn, generates missing codes with it (no import cycle)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError


def read_alist(path) -> np.ndarray:
    """Parity-check matrix (uint8, M x N) from a MacKay alist file."""
    p = Path(path)
    try:
        tokens = [int(t) for t in p.read_text().split()]
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read alist file {p}: {e}") from None
    try:
        n, m = tokens[0], tokens[1]
        col_w = tokens[4:4 + n]
        row_w = tokens[4 + n:4 + n + m]
        pos = 4 + n + m
        h = np.zeros((m, n), dtype=np.uint8)
        # column lists: each padded to the max column weight with zeros (some files omit padding)
        max_col = tokens[2]
        rest = tokens[pos:]
        padded = len(rest) >= n * max_col + m * tokens[3]
        k = 0
        for j in range(n):
            width = max_col if padded else col_w[j]
            entries = rest[k:k + width]
            k += width
            for r in entries:
                if r > 0:
                    h[r - 1, j] = 1
    except (IndexError, ValueError) as e:
        raise InputError(f"alist file {p} is malformed: {e}") from None
    if not np.array_equal(h.sum(axis=0), np.asarray(col_w)) or not np.array_equal(h.sum(axis=1), np.asarray(row_w)):
        raise InputError(f"alist file {p}: column/row weights do not match the index lists")
    return h


def write_alist(h: np.ndarray, path) -> None:
    """Write a binary M x N matrix as an alist file (zero-padded index lists, 1-based)."""
    h = np.asarray(h, dtype=np.uint8)
    m, n = h.shape
    col_w, row_w = h.sum(axis=0).astype(int), h.sum(axis=1).astype(int)
    lines = [f"{n} {m}", f"{col_w.max()} {row_w.max()}",
             " ".join(map(str, col_w)), " ".join(map(str, row_w))]
    for j in range(n):
        idx = list(np.flatnonzero(h[:, j]) + 1) + [0] * (col_w.max() - col_w[j])
        lines.append(" ".join(map(str, idx)))
    for i in range(m):
        idx = list(np.flatnonzero(h[i]) + 1) + [0] * (row_w.max() - row_w[i])
        lines.append(" ".join(map(str, idx)))
    Path(path).write_text("\n".join(lines) + "\n")
