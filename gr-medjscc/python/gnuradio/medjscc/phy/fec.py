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


def conv_encode(bits: np.ndarray) -> np.ndarray:
    bits = np.concatenate([np.asarray(bits, np.int64) & 1, np.zeros(K - 1, np.int64)])
    state = 0
    regs = np.empty(bits.size, np.int64)
    for i, b in enumerate(bits):
        r = (int(b) << (K - 1)) | state
        regs[i] = r
        state = r >> 1
    return _OUT[regs].reshape(-1).astype(np.uint8)


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
