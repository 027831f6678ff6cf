"""What every codec's ``encode`` returns (torch-free: the hybrid codec has no network)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sideinfo import SIDE_INFO_BITS_PER_SYMBOL


@dataclass
class EncodedImage:
    symbols: np.ndarray          # complex64 1-D, unit average power
    side_info: bytes
    shape: tuple                 # (H, W) of the original image
    n_payload_symbols: int
    side_info_bits: int
    cbr_payload: float
    cbr_total: float
    snr_db: float                # SNR the encoder assumed (after clamping)
    source_bytes: int = 0        # digital source bytes inside the symbols (the hybrid's base; 0: none)

    @property
    def side_info_symbols(self) -> float:
        return self.side_info_bits / SIDE_INFO_BITS_PER_SYMBOL
