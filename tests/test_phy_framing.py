"""Framing: split/assemble with lost, duplicated and reordered frames; overhead accounting."""
import math

import numpy as np
import pytest

from gnuradio.medjscc.errors import MedJSCCError
from gnuradio.medjscc.phy import (FrameHeader, ImageAssembler, OfdmParams, OfdmReceiver, OfdmTransmitter,
                                  apply_iq_channel, frame_image, overhead_symbols)

P = OfdmParams()


def _symbols(rng, n):
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2)).astype(np.complex64)


def test_frame_image_splits_payload_and_side_info(rng):
    x = _symbols(rng, 4000)
    side = bytes(range(30))
    frames = frame_image(9, x, side, P)
    assert [h.seq for h, _ in frames] == [0, 1, 2]
    assert all(h.frame_count == 3 and h.image_id == 9 and h.side_info_total == 30 for h, _ in frames)
    assert b"".join(h.side_info_chunk for h, _ in frames) == side
    assert np.array_equal(np.concatenate([pl for _, pl in frames]), x)
    # side info longer than the payload frames carry -> header-only frames are added
    frames = frame_image(1, x[:10], bytes(100), P)
    assert len(frames) == math.ceil(100 / P.header_side_info_bytes)
    assert [h.payload_len for h, _ in frames][1:] == [0] * (len(frames) - 1)
    assert len(frame_image(2, np.zeros(0, np.complex64), b"", P)) == 1
    with pytest.raises(MedJSCCError):
        frame_image(70000, x, b"", P)


@pytest.mark.parametrize("loss", [0.1, 0.5])
def test_assembler_with_loss_duplicates_and_reordering(rng, loss):
    per = 100
    x = _symbols(rng, 2000)                     # 20 frames of 100 symbols
    side = bytes(rng.integers(0, 256, 50, dtype=np.uint8))   # chunks in frames 0..4
    frames = frame_image(4, x, side, P, payload_per_frame=per)
    lost = set(rng.choice(len(frames), int(round(loss * len(frames))), replace=False).tolist())
    kept = [f for i, f in enumerate(frames) if i not in lost]
    arrivals = kept + kept[: len(kept) // 2]   # duplicates
    order = rng.permutation(len(arrivals))
    asm = ImageAssembler(P, payload_per_frame=per)
    for i in order:
        asm.add(*arrivals[i])
    out = asm.assemble(4, n_symbols=x.size)
    expect_erased = np.repeat([i in lost for i in range(len(frames))], per)
    assert np.array_equal(out.erased, expect_erased)
    assert np.array_equal(out.symbols[~out.erased], x[~expect_erased])
    assert np.all(out.symbols[out.erased] == 0)
    side_frames = set(range(math.ceil(len(side) / P.header_side_info_bytes)))
    if lost & side_frames:
        assert out.side_info is None
    else:
        assert out.side_info == side
    assert out.frames_received == len(frames) - len(lost) and out.frame_count == len(frames)
    assert asm.is_complete(4) == (not lost)


def test_assembler_side_info_survives_loss_of_frames_without_it(rng):
    frames = frame_image(2, _symbols(rng, 500), b"abc", P, payload_per_frame=100)
    asm = ImageAssembler(P, payload_per_frame=100)
    for h, pl in frames[:1] + frames[3:]:
        asm.add(h, pl)
    out = asm.assemble(2)                      # size inferred: last frame received
    assert out.side_info == b"abc" and out.symbols.size == 500 and out.erased.sum() == 200
    empty = ImageAssembler(P).assemble(99, n_symbols=10)
    assert empty.erased.all() and empty.side_info is None


def test_assembler_ignores_bad_frames(rng):
    asm = ImageAssembler(P)
    assert not asm.add(FrameHeader(5, 1, 3, 10), np.zeros(10))        # seq >= frame_count
    assert not asm.add(FrameHeader(0, 1, 3, 10), np.zeros(9))         # length mismatch

    class NoHeader:
        header, crc_ok = None, False
    assert not asm.add(NoHeader())
    assert asm.image_ids() == []


def test_overhead_matches_modulated_length(rng):
    x = _symbols(rng, 4000)
    side = bytes(40)
    frames = frame_image(1, x, side, P)
    tx = OfdmTransmitter(P)
    n_samples = sum(tx.modulate(h, pl).size for h, pl in frames)
    ov = overhead_symbols(x.size, len(side), P)
    assert ov["frames"] == len(frames) and ov["total"] == n_samples
    assert ov["overhead"] == n_samples - x.size
    assert ov["preamble"] + ov["header"] + ov["pilots"] + ov["cyclic_prefix"] + ov["guard_and_padding"] \
        == ov["overhead"]


def test_end_to_end_image_over_ofdm_with_lost_frame(rng):
    x = _symbols(rng, 4000)                    # 3 frames; the middle one is lost
    frames = frame_image(11, x, b"side-info!", P)
    tx = OfdmTransmitter(P)
    iq = np.concatenate([np.concatenate([np.zeros(200, np.complex64), tx.modulate(h, pl)])
                         for i, (h, pl) in enumerate(frames) if i != 1] + [np.zeros(200, np.complex64)])
    y = apply_iq_channel(iq, "awgn", 18.0, cfo=0.1, rng=rng, params=P)
    asm = ImageAssembler(P)
    for f in OfdmReceiver(P).process(y):
        asm.add(f)
    out = asm.assemble(11, n_symbols=x.size)
    assert out.side_info == b"side-info!"
    assert out.erased.sum() == P.max_payload_len
    err = np.mean(np.abs(out.symbols[~out.erased] - x[~out.erased]) ** 2)
    assert 10 * math.log10(1 / err) > 16.5
    assert out.noise_var is not None and np.all(np.isinf(out.noise_var[out.erased]))
