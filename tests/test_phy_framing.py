"""Framing: interleaving, erasure-coded side info, lost/duplicated/reordered frames, sessions,
overhead accounting."""
import itertools
import math

import numpy as np
import pytest

from gnuradio.medjscc.errors import MedJSCCError
from gnuradio.medjscc.phy import (FrameHeader, ImageAssembler, OfdmParams, OfdmReceiver, OfdmTransmitter,
                                  apply_iq_channel, frame_image, overhead_symbols)
from gnuradio.medjscc.phy import framing

P = OfdmParams()


def _symbols(rng, n):
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2)).astype(np.complex64)


def _codec_like(rng, n, channels=16):
    """Channel-major symbols with decaying power (strong components first), as the codec emits."""
    power = np.repeat(np.exp(-np.arange(channels) / 3.0), -(-n // channels))[:n]
    x = _symbols(rng, n) * np.sqrt(power / power.mean()).astype(np.float32)
    return x.astype(np.complex64)


def test_frame_image_interleaves_and_states_size_and_session(rng):
    x = _symbols(rng, 4000)
    side = bytes(range(24))
    frames = frame_image(9, x, side, P, nonce=4321)
    assert [h.seq for h, _ in frames] == [0, 1, 2]
    assert all(h.frame_count == 3 and h.image_id == 9 and h.side_info_total == 24 and h.nonce == 4321
               and h.n_symbols == 4000 for h, _ in frames)
    sent = np.concatenate([pl for _, pl in frames])
    per = framing.balanced_per(x.size, P.max_payload_len)     # 4000 symbols: 1334 + 1334 + 1332
    assert [pl.size for _, pl in frames] == [1334, 1334, 1332] and per == 1334
    assert np.array_equal(sent, x[framing.interleaver(x.size, per)])
    assert not np.array_equal(sent, x)
    asm = ImageAssembler(P)
    for f in frames:
        asm.add(*f)
    out = asm.assemble(9)
    assert np.array_equal(out.symbols, x) and not out.erased.any()
    assert out.side_info == side and out.side_info_status == "ok" and out.nonce == 4321
    # more side info than two chunks: header-only frames keep the parity
    frames = frame_image(1, x[:10], bytes(100), P)
    k = math.ceil((100 + framing.SIDE_CRC_BYTES) / P.header_side_info_bytes)
    assert len(frames) == k + P.side_info_parity
    assert [h.payload_len for h, _ in frames][1:] == [0] * (len(frames) - 1)
    assert len(frame_image(2, np.zeros(0, np.complex64), b"", P)) == 1
    with pytest.raises(MedJSCCError):
        frame_image(70000, x, b"", P)
    with pytest.raises(MedJSCCError):
        frame_image(1, x, bytes(300), P)          # larger than the u8 side-info field


def test_interleaving_evens_frame_power_and_lowers_peaks(rng):
    x = _codec_like(rng, 3904)
    tx = OfdmTransmitter(P)

    def stats(params):
        frames = frame_image(0, x, bytes(24), params)
        power = [float(np.mean(np.abs(pl) ** 2)) for _, pl in frames if pl.size]
        iq = np.concatenate([tx.modulate(h, pl)[P.preamble_len + P.n_header_symbols * P.symbol_len:]
                             for h, pl in frames])
        papr = float(np.max(np.abs(iq) ** 2) / np.mean(np.abs(iq) ** 2))
        return power, papr

    p_plain, papr_plain = stats(OfdmParams(interleave=False))
    p_int, papr_int = stats(P)
    assert max(p_plain) / min(p_plain) > 3            # channel-major: the first frame is the loud one
    assert max(p_int) / min(p_int) < 1.2            # what is left is the symbols' own randomness
    assert 10 * math.log10(papr_int) < 10 * math.log10(papr_plain) - 3


@pytest.mark.parametrize("k,n", [(1, 2), (2, 3), (3, 5), (4, 4), (5, 9)])
def test_erasure_code_rebuilds_from_any_k_chunks(rng, k, n):
    blob = bytes(rng.integers(0, 256, k * 7 - 3, dtype=np.uint8))
    chunks = framing.erasure_encode(blob, k, n, 7)
    assert all(len(c) == 7 for c in chunks) and b"".join(chunks[:k]).startswith(blob)   # systematic
    for keep in itertools.combinations(range(n), k):
        got = framing.erasure_decode({i: chunks[i] for i in keep}, k, 7)
        assert got[: len(blob)] == blob, keep
    assert framing.erasure_decode({i: chunks[i] for i in range(k - 1)}, k, 7) is None


def test_side_info_survives_any_single_lost_frame_over_the_air_path(rng):
    x = _symbols(rng, 3904)
    side = bytes(rng.integers(0, 256, 24, dtype=np.uint8))
    frames = frame_image(3, x, side, P, nonce=7)
    for lost in range(len(frames)):
        asm = ImageAssembler(P)
        for i, f in enumerate(frames):
            if i != lost:
                asm.add(*f)
        out = asm.assemble(3)
        assert out.side_info == side and out.side_info_status == "ok"
        assert out.symbols.size == x.size           # sized from the header even without the last frame
        assert np.array_equal(out.symbols[~out.erased], x[~out.erased])
        expect = frames[lost][0].payload_len / x.size
        assert abs(out.erased.mean() - expect) < 1e-9
        # the erasures are spread over the image, not one block of it
        assert np.flatnonzero(out.erased).ptp() > 0.9 * x.size
    # the default chunk holds the whole side info: any one frame that arrives delivers it
    for seq in range(len(frames)):
        asm = ImageAssembler(P)
        asm.add(*frames[seq])
        assert asm.assemble(3).side_info == side
    # split over two 14-byte chunks, one frame is not enough
    p14 = OfdmParams(header_side_info_bytes=14).validate()
    asm = ImageAssembler(p14)
    asm.add(*frame_image(3, x, side, p14, nonce=7)[0])
    assert asm.assemble(3).side_info_status == "missing" and asm.assemble(3).side_info is None


def _flipped(frame, byte, bit):
    h, pl = frame
    chunk = bytearray(h.side_info_chunk)
    chunk[byte] ^= 1 << bit
    return FrameHeader(h.seq, h.image_id, h.frame_count, h.payload_len, bytes(chunk), h.side_info_total,
                       h.nonce, h.n_symbols), pl


@pytest.mark.parametrize("chunk_bytes", [14, 32])
def test_corrupt_side_info_is_detected_not_decoded(rng, chunk_bytes):
    """A side-info bit flipped under a valid header CRC: never decoded silently wrong. With
    another frame's copy the side info is rebuilt from it; with every received copy bad it is
    reported corrupt."""
    p = OfdmParams(header_side_info_bytes=chunk_bytes).validate()
    x = _symbols(rng, 3904)
    side = bytes(rng.integers(0, 256, 24, dtype=np.uint8))
    frames = frame_image(3, x, side, p, nonce=7)
    covered = len(side) + framing.SIDE_CRC_BYTES             # bytes past these are zero padding
    k = -(-covered // chunk_bytes)
    for byte in range(min(chunk_bytes, covered)):
        for bit in (0, 5):
            asm = ImageAssembler(p)
            for f in frames[:k]:                              # every received chunk is needed: k of k
                asm.add(*(_flipped(f, byte, bit) if f is frames[0] else f))
            out = asm.assemble(3)
            assert out.side_info is None and out.side_info_status == "corrupt", (byte, bit)
            asm.add(*frames[k])                               # one more frame: a clean subset exists
            out = asm.assemble(3)
            assert out.side_info == side and out.side_info_status == "ok", (byte, bit)
            bad_all = ImageAssembler(p)
            for f in frames:
                bad_all.add(*_flipped(f, byte, bit))
            assert bad_all.assemble(3).side_info_status == "corrupt"


def test_two_sessions_reusing_an_image_id_never_merge(rng):
    a, b = _symbols(rng, 3904), _symbols(rng, 3904)
    fa = frame_image(0, a, bytes(24), P, nonce=1)
    fb = frame_image(0, b, bytes(range(24)), P, nonce=2)
    asm = ImageAssembler(P)
    for f in (fa[0], fb[1], fa[1], fb[2]):
        asm.add(*f)
    assert sorted(asm.keys()) == [(1, 0), (2, 0)]
    out_a, out_b = asm.assemble((1, 0)), asm.assemble((2, 0))
    assert out_a.side_info == bytes(24) and out_b.side_info == bytes(range(24))
    assert np.array_equal(out_a.symbols[~out_a.erased], a[~out_a.erased])
    assert np.array_equal(out_b.symbols[~out_b.erased], b[~out_b.erased])


@pytest.mark.parametrize("loss", [0.1, 0.5])
def test_assembler_with_loss_duplicates_and_reordering(rng, loss):
    per = 100
    x = _symbols(rng, 2000)                     # 20 frames of 100 symbols
    side = bytes(rng.integers(0, 256, 50, dtype=np.uint8))
    frames = frame_image(4, x, side, P, payload_per_frame=per)
    lost = set(rng.choice(len(frames), int(round(loss * len(frames))), replace=False).tolist())
    kept = [f for i, f in enumerate(frames) if i not in lost]
    arrivals = kept + kept[: len(kept) // 2]   # duplicates
    order = rng.permutation(len(arrivals))
    asm = ImageAssembler(P, payload_per_frame=per)
    for i in order:
        asm.add(*arrivals[i])
    out = asm.assemble(4)
    erased_sent = np.repeat([i in lost for i in range(len(frames))], per)   # in transmit order
    expect_erased = framing.deinterleave(erased_sent, per, True)
    assert np.array_equal(out.erased, expect_erased)
    assert np.array_equal(out.symbols[~out.erased], x[~expect_erased])
    assert np.all(out.symbols[out.erased] == 0)
    k = math.ceil((len(side) + framing.SIDE_CRC_BYTES) / P.header_side_info_bytes)
    if len(frames) - len(lost) >= k:
        assert out.side_info == side
    else:
        assert out.side_info is None and out.side_info_status == "missing"
    assert out.frames_received == len(frames) - len(lost) and out.frame_count == len(frames)
    assert asm.is_complete(4) == (not lost)


def test_assembler_ignores_bad_frames(rng):
    asm = ImageAssembler(P)
    assert not asm.add(FrameHeader(5, 1, 3, 10), np.zeros(10))        # seq >= frame_count
    assert not asm.add(FrameHeader(0, 1, 3, 10), np.zeros(9))         # length mismatch

    class NoHeader:
        header, crc_ok = None, False
    assert not asm.add(NoHeader())
    assert asm.image_ids() == []
    empty = ImageAssembler(P).assemble(99, n_symbols=10)
    assert empty.erased.all() and empty.side_info is None and empty.side_info_status == "missing"


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
    frames = frame_image(11, x, b"side-info!", P, nonce=99)
    tx = OfdmTransmitter(P)
    iq = np.concatenate([np.concatenate([np.zeros(200, np.complex64), tx.modulate(h, pl)])
                         for i, (h, pl) in enumerate(frames) if i != 1] + [np.zeros(200, np.complex64)])
    y = apply_iq_channel(iq, "awgn", 18.0, cfo=0.1, rng=rng, params=P)
    asm = ImageAssembler(P)
    for f in OfdmReceiver(P).process(y):
        asm.add(f)
    out = asm.assemble(11)
    assert out.side_info == b"side-info!" and out.symbols.size == x.size
    assert out.erased.sum() == frames[1][0].payload_len == 1334      # frames split evenly
    err = np.mean(np.abs(out.symbols[~out.erased] - x[~out.erased]) ** 2)
    assert 10 * math.log10(1 / err) > 16.5
    assert out.noise_var is not None and np.all(np.isinf(out.noise_var[out.erased]))


def test_stream_that_starts_mid_frame_still_delivers_the_image(rng):
    """A receiver switched on in the middle of an image's first frame: the frames after it carry
    enough side info, so the image comes out with that frame's symbols erased (degraded, not grey)."""
    x = _symbols(rng, 3904)
    side = bytes(rng.integers(0, 256, 24, dtype=np.uint8))
    frames = frame_image(5, x, side, P, nonce=3)
    tx = OfdmTransmitter(P)
    gap = np.zeros(200, np.complex64)
    iq = np.concatenate([np.concatenate([tx.modulate(h, pl), gap]) for h, pl in frames])
    start = P.preamble_len + P.n_header_symbols * P.symbol_len + 7 * P.symbol_len + 13   # inside frame 0
    y = apply_iq_channel(iq[start:], "awgn", 20.0, rng=rng, params=P)
    rx = OfdmReceiver(P)
    asm = ImageAssembler(P)
    for f in list(rx.process(y)) + list(rx.flush()):
        asm.add(f)
    out = asm.assemble(5)
    assert out.frames_received == len(frames) - 1 and out.side_info == side
    assert out.symbols.size == x.size and abs(out.erased.mean() - frames[0][0].payload_len / x.size) < 1e-9
