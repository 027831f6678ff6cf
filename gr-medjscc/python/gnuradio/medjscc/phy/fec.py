"""Header FEC: K=7 rate-1/3 convolutional code (octal 133, 171, 165) with a soft Viterbi decoder.

The encoder is terminated with 6 zero tail bits. The decoder works on LLRs
(positive = bit 0), is vectorised over the 64 trellis states and loops over time only.
"""
from __future__ import annotations

import numpy as np

K = 7
N_STATES = 1 << (K - 1)
GENERATORS = (0o133, 0o171, 0o165)
RATE_INV = len(GENERATORS)


def coded_length(n_info_bits: int) -> int:
    return (n_info_bits + K - 1) * RATE_INV


def _parity(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    out = np.zeros_like(x)
    while np.any(x):
        out ^= x & 1
        x >>= 1
    return out


# register r (7 bits): bit 6 = newest input bit, bits 5..0 = the previous six (state)
_REGS = np.arange(1 << K)
_OUT = np.stack([_parity(_REGS & g) for g in GENERATORS], axis=1).astype(np.int8)  # (128, 3)
_SIGN = (1 - 2 * _OUT).astype(np.float64)                                             # bit 0 -> +1
# for each next state ns (= r >> 1) the two registers reaching it: r = (ns << 1) | b
_NS = np.arange(N_STATES)
_REG0 = (_NS << 1) | 0
_REG1 = (_NS << 1) | 1
_PREV0 = _REG0 & (N_STATES - 1)
_PREV1 = _REG1 & (N_STATES - 1)
_INPUT_OF_NS = (_NS >> (K - 2)) & 1
_LABEL_OF_REG = _OUT @ (1 << np.arange(RATE_INV - 1, -1, -1))                     # 3 bits -> 0..7
_LABEL_SIGN = (1 - 2 * ((np.arange(8)[:, None] >> np.arange(RATE_INV - 1, -1, -1)) & 1)).astype(np.float64)
_LABEL0 = _LABEL_OF_REG[_REG0]
_LABEL1 = _LABEL_OF_REG[_REG1]


_GEN_TAPS = np.array([[(g >> (K - 1 - i)) & 1 for i in range(K)] for g in GENERATORS], np.int64)


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """Encode (..., n) bits -> (..., (n + 6) * 3) coded bits (terminated), batched over leading axes."""
    bits = np.asarray(bits, np.int64) & 1
    lead = bits.shape[:-1]
    b = bits.reshape(-1, bits.shape[-1])
    b = np.concatenate([b, np.zeros((b.shape[0], K - 1), np.int64)], axis=1)
    n = b.shape[1]
    # output j at time t = XOR over taps i of g_j[i] * b[t - i] (tap 0 = newest bit)
    padded = np.concatenate([np.zeros((b.shape[0], K - 1), np.int64), b], axis=1)
    win = np.lib.stride_tricks.sliding_window_view(padded, K, axis=1)[:, :n, ::-1]   # (B, n, K) newest first
    out = (win @ _GEN_TAPS.T) & 1                                                     # (B, n, 3)
    return out.reshape(*lead, n * RATE_INV).astype(np.uint8)


def viterbi_decode(llr: np.ndarray, n_info_bits: int) -> np.ndarray:
    """Soft-decision Viterbi for a terminated stream. ``llr`` > 0 means bit 0."""
    n_steps = n_info_bits + K - 1
    llr = np.asarray(llr, np.float64)[: n_steps * RATE_INV].reshape(n_steps, RATE_INV)
    # branch metric (correlation) of every register at every step
    bm = llr @ _SIGN.T                                   # (n_steps, 128)
    pm = np.full(N_STATES, -np.inf)
    pm[0] = 0.0
    decisions = np.empty((n_steps, N_STATES), np.bool_)
    for t in range(n_steps):
        m0 = pm[_PREV0] + bm[t, _REG0]
        m1 = pm[_PREV1] + bm[t, _REG1]
        d = m1 > m0
        decisions[t] = d
        pm = np.where(d, m1, m0)
    # trace back from the all-zero (terminated) state
    state = 0
    out = np.empty(n_steps, np.uint8)
    for t in range(n_steps - 1, -1, -1):
        out[t] = _INPUT_OF_NS[state]
        b = int(decisions[t, state])
        state = ((state << 1) | b) & (N_STATES - 1)
    return out[:n_info_bits]


def _label_metrics(llr: np.ndarray, n_steps: int) -> np.ndarray:
    """Branch metrics of a batch, (n_steps, 8, B): only 8 distinct 3-bit branch labels, so metrics
    per label (gathered per state later), state-major so every step works on contiguous rows."""
    B = llr.shape[0]
    llr = llr[:, : n_steps * RATE_INV].reshape(B, n_steps, RATE_INV)
    return np.ascontiguousarray((llr.reshape(-1, RATE_INV) @ _LABEL_SIGN.T.astype(np.float32))
                                .reshape(B, n_steps, 8).transpose(1, 2, 0))


def viterbi_decode_batch(llr: np.ndarray, n_info_bits: int) -> np.ndarray:
    """Soft Viterbi for a batch: llr (B, >= coded_length) -> bits (B, n_info_bits)."""
    llr = np.asarray(llr, np.float32)
    B = llr.shape[0]
    n_steps = n_info_bits + K - 1
    if B == 0:
        return np.zeros((0, n_info_bits), np.uint8)
    bm = _label_metrics(llr, n_steps)
    pm = np.full((N_STATES, B), -1e30, np.float32)
    pm[0] = 0.0
    decisions = np.empty((n_steps, N_STATES, B), np.bool_)
    m0 = np.empty((N_STATES, B), np.float32)
    m1 = np.empty((N_STATES, B), np.float32)
    for t in range(n_steps):
        np.add(pm[_PREV0], bm[t, _LABEL0], out=m0)
        np.add(pm[_PREV1], bm[t, _LABEL1], out=m1)
        d = decisions[t]
        np.greater(m1, m0, out=d)
        pm = np.where(d, m1, m0)
        if t % 16 == 15:
            pm -= pm.max(axis=0)                         # keep metrics bounded
    state = np.zeros(B, np.int64)
    rows = np.arange(B)
    out = np.empty((B, n_steps), np.uint8)
    for t in range(n_steps - 1, -1, -1):
        out[:, t] = _INPUT_OF_NS[state]
        b = decisions[t, state, rows].astype(np.int64)
        state = ((state << 1) | b) & (N_STATES - 1)
    return out[:, :n_info_bits]


def list_viterbi_decode_batch(llr: np.ndarray, n_info_bits: int, list_size: int = 8) -> np.ndarray:
    """Parallel list Viterbi: the ``list_size`` best paths into the terminated state, best first.

    llr (B, >= coded_length) -> bits (list_size, B, n_info_bits). Each state keeps its L best
    partial paths (the top L of the 2L that reach it), so the candidates are the L most likely
    codewords. With a CRC on the block, trying them in order ("CRC-aided list decoding") rescues
    many blocks whose single best path has a bit error, about 0.5-1 dB on short blocks. Entry 0 is
    the plain Viterbi result."""
    L = int(list_size)
    if not 1 <= L <= 128:      # back-pointers into the 2L candidates are stored as uint8
        raise ValueError(f"list_size must be in [1, 128], got {list_size}")
    llr = np.asarray(llr, np.float32)
    B = llr.shape[0]
    n_steps = n_info_bits + K - 1
    if B == 0:
        return np.zeros((L, 0, n_info_bits), np.uint8)
    bm = _label_metrics(llr, n_steps)
    dead = np.float32(-1e30)
    pm = np.full((N_STATES, L, B), dead, np.float32)
    pm[0, 0] = 0.0
    # per step, state and rank: which of the 2L candidates survived (branch * L + rank before)
    back = np.empty((n_steps, N_STATES, L, B), np.uint8)
    for t in range(n_steps):
        cand = np.concatenate([pm[_PREV0] + bm[t, _LABEL0][:, None, :],
                               pm[_PREV1] + bm[t, _LABEL1][:, None, :]], axis=1)   # (64, 2L, B)
        keep = np.argsort(-cand, axis=1, kind="stable")[:, :L]
        pm = np.take_along_axis(cand, keep, axis=1)
        back[t] = keep
        if t % 16 == 15:
            pm -= pm.max(axis=(0, 1))                    # keep metrics bounded
    state = np.zeros((L, B), np.int64)
    rank = np.broadcast_to(np.arange(L)[:, None], (L, B)).copy()
    cols = np.broadcast_to(np.arange(B)[None, :], (L, B))
    out = np.empty((L, B, n_steps), np.uint8)
    for t in range(n_steps - 1, -1, -1):
        out[:, :, t] = _INPUT_OF_NS[state]
        k = back[t, state, rank, cols].astype(np.int64)
        state = ((state << 1) | (k // L)) & (N_STATES - 1)
        rank = k % L
    return out[:, :, :n_info_bits]
