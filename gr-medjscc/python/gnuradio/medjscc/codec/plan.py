"""One allocation plan for training and inference (issue #16: the decoder trains on the rate maps
it will be given).

For an image's budget of ``target_total`` channel uses (payload symbols + side info), the plan
picks the allocation cell size, the rate index per cell, the side info that states them, and the
symbol count per latent position; ``Codec.encode`` and ``JSCCModel.forward`` both call
``plan_allocation``, as CompressAI's ``compress()`` reuses the modules ``forward()`` trains.
Pure numpy; it knows the model only through its ``ModelConfig``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import MedJSCCError
from . import allocation, sideinfo

DOWNSCALE = 16
SIDE_INFO_FRACTION = 0.05          # the rate map may take about this share of the budget
BITS_PER_CELL_ESTIMATE = 3.0       # ... at about this many bits per allocation cell


def latent_shape(shape) -> tuple[int, int]:
    h, w = shape
    return -(-h // DOWNSCALE), -(-w // DOWNSCALE)


def rate_block_for(cfg, shape, target_total: float, mask_bits: int = 0, override: int | None = None) -> int:
    """Allocation cell size: the configured one, doubled while the rate map would cost more than
    ``SIDE_INFO_FRACTION`` of the budget (at ~``BITS_PER_CELL_ESTIMATE`` bits a cell)."""
    if override:
        return int(override)
    block = cfg.rate_block
    budget_bits = SIDE_INFO_FRACTION * target_total * sideinfo.SIDE_INFO_BITS_PER_SYMBOL - mask_bits
    while block < 8:
        cells = np.prod(allocation.block_grid(latent_shape(shape), block))
        if cells * BITS_PER_CELL_ESTIMATE <= budget_bits:
            break
        block *= 2
    return block


def side_info(cfg, rate_idx, roi_grid, block: int | None = None, power_code: int | None = None,
              repeat_code: int = 0) -> bytes:
    """The side info for a rate map and ROI grid (linear-path models: a placeholder power code of
    the final size unless ``power_code`` is given; ``repeat_code``: ``codec.repetition``)."""
    mask_bytes = None
    if roi_grid is not None:
        from ..roi.sideinfo import encode_mask

        mask_bytes = encode_mask(roi_grid)
    if not cfg.linear_path:
        power_code = None
    elif power_code is None:
        power_code = sideinfo.POWER_CODE_OFFSET
    return sideinfo.pack(rate_idx, len(cfg.levels), mask_bytes, block or cfg.rate_block, power_code, repeat_code)


def payload_budget(cfg, target_total: float, side: bytes, shape, name: str | None = None) -> int:
    """Unique payload symbols left of ``target_total`` once the side info (and the repeated
    symbols it states) are paid; a clear error when the side info alone exceeds it or the model
    cannot carry that many symbols."""
    side_symbols = sideinfo.size_bits(side) / sideinfo.SIDE_INFO_BITS_PER_SYMBOL
    n_pix = shape[0] * shape[1]
    n_payload = int(math.floor(target_total - side_symbols))
    code = sideinfo.repeat_code_of(side)
    if code and n_payload > 0:
        from .repetition import unique_budget

        n_payload = unique_budget(n_payload, code)
    gh, gw = latent_shape(shape)
    capacity = cfg.k_max * gh * gw
    if n_payload < 1:
        raise MedJSCCError(
            f"cbr {target_total / n_pix:.5f} unreachable for a {shape[0]}x{shape[1]} image: the side info alone "
            f"needs {side_symbols:.0f} symbols (cbr {side_symbols / n_pix:.5f}); use a larger cbr")
    if n_payload > capacity:
        raise MedJSCCError(
            f"cbr {target_total / n_pix:.5f} unreachable for model {name or cfg.name}: at most "
            f"{(capacity + side_symbols) / n_pix:.4f} ({cfg.k_max} symbols per 16x16 patch)")
    return n_payload


@dataclass
class AllocationPlan:
    kmap: np.ndarray               # (gh, gw) int64 complex symbols per latent position
    side_info: bytes               # rate map + ROI grid (+ placeholder power code)
    n_payload: int                 # == kmap.sum()
    rate_idx: np.ndarray | None    # per cell (variable-length models)
    block: int | None              # allocation cell size (variable-length models)


def plan_allocation(cfg, score_for_block: Callable[[int], np.ndarray] | None, roi_grid, target_total: float,
                    shape, block_override: int | None = None, name: str | None = None,
                    repeat_code: int = 0) -> AllocationPlan:
    """The allocation of an image of ``shape`` pixels (padded to a multiple of 16) within
    ``target_total`` channel uses. ``score_for_block(block)``: the allocation score per cell of
    that size (variable-length models; e.g. ``JSCCModel.cell_scores`` of the hyperprior's bits).

    The side info's size depends on the allocation it states, so the payload is solved to a fixed
    point (4 rounds), the weakest cells are trimmed if the last side info grew, and the symbols
    the rate levels cannot place go to the first positions (``allocation.add_remainder``).
    ``repeat_code``: the stream will repeat its first symbols (``codec.repetition``); they are
    paid out of the same budget."""
    gh, gw = latent_shape(shape)
    if not cfg.variable_length:
        side = side_info(cfg, None, roi_grid, repeat_code=repeat_code)
        n_payload = payload_budget(cfg, target_total, side, shape, name)
        return AllocationPlan(allocation.allocate_fixed(n_payload, (gh, gw), cfg.k_max), side, n_payload, None, None)
    mask_bits = 0
    if roi_grid is not None:
        from ..roi.sideinfo import mask_bits as _mask_bits

        mask_bits = _mask_bits(roi_grid)
    block = rate_block_for(cfg, shape, target_total, mask_bits, block_override)
    score = score_for_block(block)
    sizes = allocation.block_sizes((gh, gw), block)

    def kmap_for(idx):
        return allocation.symbols_per_position(idx, (gh, gw), block, cfg.levels)

    side = side_info(cfg, np.zeros(score.shape, dtype=np.int64), roi_grid, block, repeat_code=repeat_code)
    for _ in range(4):   # side-info size depends on the allocation: iterate to a fixed point
        n_payload = payload_budget(cfg, target_total, side, shape, name)
        rate_idx = allocation.allocate_variable(score, sizes, n_payload, cfg.levels)
        new_side = side_info(cfg, rate_idx, roi_grid, block, repeat_code=repeat_code)
        if len(new_side) == len(side):
            break
        side = new_side
    side = new_side
    n_payload = payload_budget(cfg, target_total, side, shape, name)
    kmap = kmap_for(rate_idx)
    while kmap.sum() > n_payload:   # the final side info grew: drop the weakest cells
        live = rate_idx > 0
        if not live.any():
            break
        i, j = np.argwhere(live)[np.argmin(score[live])]
        rate_idx[i, j] -= 1
        kmap = kmap_for(rate_idx)
        side = side_info(cfg, rate_idx, roi_grid, block, repeat_code=repeat_code)
        n_payload = payload_budget(cfg, target_total, side, shape, name)
    kmap = allocation.add_remainder(kmap, int(n_payload - kmap.sum()), cfg.k_max)
    return AllocationPlan(kmap, side, n_payload, rate_idx, block)
