"""Carrier ranking fed back from the receiver (phy.csi): the header tag, the ranked interleaver,
the receiver's table, and when the ranker issues (or withdraws) a ranking."""
import math

import numpy as np
import pytest

from gnuradio.medjscc.errors import MedJSCCError
from gnuradio.medjscc.phy import FrameHeader, ImageAssembler, OfdmParams, framing
from gnuradio.medjscc.phy.csi import CarrierRanker, carrier_snr_db, check_carrier_rank, csi_from_message

P = OfdmParams().validate()
N_DATA = P.n_data_carriers


def _symbols(rng, n):
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2)).astype(np.complex64)


def test_header_carries_the_tag_beside_a_20_bit_symbol_count():
    big = OfdmParams(symbols_per_frame=100).validate()      # 255 frames of 4800: more than 20 bits
    h = FrameHeader(seq=1, image_id=9, frame_count=255, payload_len=100, nonce=5, n_symbols=0xFFFFF, csi_tag=15)
    back = FrameHeader.from_bytes(h.to_bytes(big), big)
    assert back.csi_tag == 15 and back.n_symbols == 0xFFFFF and back.image_id == 9
    assert FrameHeader.from_bytes(FrameHeader(0, 1, 1, 10, n_symbols=10).to_bytes(P), P).csi_tag == 0
    with pytest.raises(MedJSCCError, match="csi_tag"):
        FrameHeader(0, 1, 1, 10, csi_tag=16).to_bytes(P)
    with pytest.raises(MedJSCCError, match="n_symbols"):
        FrameHeader(0, 1, 1, 10, n_symbols=0x100000).to_bytes(P)


def test_ranked_interleaver_puts_the_stream_head_on_the_strongest_carriers(rng):
    n = 4100
    per = framing.balanced_per(n, P.max_payload_len)
    rank = rng.permutation(N_DATA)
    perm = framing.interleaver(n, per, rank)
    assert np.array_equal(np.sort(perm), np.arange(n))
    x = _symbols(rng, n)
    assert np.array_equal(framing.deinterleave(x[perm], per, 0, rank), x)
    sent_pos = np.empty(n, np.int64)
    sent_pos[np.arange(n)] = np.argsort(perm)                 # where stream symbol i is sent
    carrier = (sent_pos % per) % N_DATA
    place = np.argsort(rank)                                  # carrier -> its rank
    stream_rank = place[carrier]
    # stream order follows the carrier ranking: each carrier holds a contiguous band of the stream
    mean_idx = [np.mean(np.nonzero(stream_rank == r)[0]) for r in range(N_DATA)]
    assert np.all(np.diff(mean_idx) > 0)
    assert set(carrier[:60].tolist()) == {rank[0]}
    # every frame still gets an even share of the stream (power, losses)
    frame = sent_pos // per
    assert np.ptp(np.bincount(frame[: n // 2])) <= 1
    # no ranking: the fixed interleaver, unchanged
    assert not np.array_equal(framing.interleaver(n, per), perm)
    assert np.array_equal(framing.interleaver(n, per, None), framing.interleaver(n, per))


def test_frame_image_checks_the_ranking_and_its_tag(rng):
    x = _symbols(rng, 3000)
    rank = rng.permutation(N_DATA)
    with pytest.raises(MedJSCCError, match="csi_tag"):
        framing.frame_image(0, x, b"", P, carrier_rank=rank)                      # no tag
    with pytest.raises(MedJSCCError, match="without its carrier ranking"):
        framing.frame_image(0, x, b"", P, csi_tag=3)
    with pytest.raises(MedJSCCError, match="permutation"):
        framing.frame_image(0, x, b"", P, carrier_rank=np.zeros(N_DATA, int), csi_tag=3)
    with pytest.raises(MedJSCCError, match="permutation"):
        framing.frame_image(0, x, b"", P, carrier_rank=np.arange(N_DATA - 1), csi_tag=3)


def test_receiver_undoes_a_ranking_it_issued_and_refuses_one_it_did_not(rng):
    x = _symbols(rng, 4100)
    rank = rng.permutation(N_DATA)
    frames = framing.frame_image(4, x, bytes(range(20)), P, carrier_rank=rank, csi_tag=6, nonce=11)
    assert {h.csi_tag for h, _ in frames} == {6}
    asm = ImageAssembler(P, carrier_ranks={6: rank})
    for h, pay in frames[:1] + frames[2:]:                   # frame 1 lost
        asm.add(FrameHeader.from_bytes(h.to_bytes(P), P), pay)
    got = asm.assemble((11, 4))
    assert got.mapping_known and got.csi_tag == 6 and got.side_info_status == "ok"
    ok = ~got.erased
    assert np.array_equal(got.symbols[ok], x[ok])
    assert 0.3 < got.erased.mean() < 0.37                    # one frame of three, spread over the image
    stranger = ImageAssembler(P, carrier_ranks={5: rank})
    for h, pay in frames:
        stranger.add(h, pay)
    got = stranger.assemble((11, 4))
    assert not got.mapping_known and got.csi_tag == 6


def test_feedback_messages_are_checked():
    assert csi_from_message({"snr_db": 3.0}, N_DATA) is None
    assert csi_from_message({"csi_tag": 0}, N_DATA) == (0, None)
    tag, rank = csi_from_message({"csi_tag": 2, "carrier_rank": np.arange(N_DATA)[::-1].astype(np.int32)}, N_DATA)
    assert tag == 2 and rank[0] == N_DATA - 1
    for bad in ({"csi_tag": 2}, {"csi_tag": 2, "carrier_rank": list(range(N_DATA - 1)) + [0]},
                {"csi_tag": 16, "carrier_rank": list(range(N_DATA))}, {"csi_tag": "x"}):
        with pytest.raises(MedJSCCError):
            csi_from_message(bad, N_DATA)
    with pytest.raises(MedJSCCError):
        check_carrier_rank(np.arange(N_DATA) * 1.0, N_DATA)


def test_carrier_snr_from_the_post_equaliser_error():
    nv = np.array([0.5, 0.1, 0.01])           # MMSE: SNR = 1/mse - 1
    assert np.allclose(carrier_snr_db(nv), 10 * np.log10([1.0, 9.0, 99.0]), atol=1e-4)
    assert np.allclose(carrier_snr_db(nv, "zf"), 10 * np.log10([2.0, 10.0, 100.0]), atol=1e-4)
    assert carrier_snr_db([]) is None and carrier_snr_db([np.inf, 0.1]) is None


def _selective(rng, depth_db=12.0):
    k = np.arange(N_DATA)
    return depth_db / 2 * np.cos(2 * np.pi * k * 3 / 64 + rng.uniform(0, 2 * np.pi)) + 10.0


def _faded(rng):
    """A fresh Rayleigh 3-tap channel (delays 0 / 3 / 8) per call: |H_k|^2 in dB + 10."""
    taps = np.zeros(64, complex)
    taps[[0, 3, 8]] = (rng.standard_normal(3) + 1j * rng.standard_normal(3)) * np.sqrt([0.5, 0.25, 0.25])
    h2 = np.abs(np.fft.fft(taps)[P.data_carrier_idx % 64]) ** 2
    return 10 * np.log10(np.maximum(h2, 1e-4)) + 10.0


def test_ranker_issues_a_ranking_on_a_static_selective_channel_only(rng):
    profile = _selective(rng)
    r = CarrierRanker(min_frames=3)
    ups = [r.update(profile + rng.normal(0, 1.0, N_DATA)) for _ in range(6)]
    assert [u.tag for u in ups[:2]] == [0, 0] and ups[2].issued and ups[2].tag == 1
    assert all(u.tag == 1 and not u.issued for u in ups[3:])       # noise does not churn tags
    order = np.argsort(-profile)
    assert np.mean(np.abs(profile[r.rank] - profile[order])) < 1.0
    # a flat channel: its profile is estimation noise -> never a ranking
    flat = CarrierRanker()
    assert all(flat.update(10 + rng.normal(0, 1.0, N_DATA)).tag == 0 for _ in range(30))
    # fast fading: a new selective profile every frame -> never a ranking
    fading = CarrierRanker()
    assert all(fading.update(_faded(rng)).tag == 0 for _ in range(30))


def test_ranker_follows_a_changed_channel_and_withdraws_when_it_goes_flat(rng):
    r = CarrierRanker(min_frames=3, min_reissue_frames=8)
    a = _selective(rng)
    b = 20.0 - a                                  # the fades move to the other carriers
    for _ in range(4):
        r.update(a)
    assert r.tag == 1
    one_outlier = r.update(b)                     # a single odd frame is ignored
    assert one_outlier.tag == 1
    tags = [r.update(b).tag for _ in range(12)]
    assert tags[0] == 0                           # two in a row: the old ranking is withdrawn
    assert tags[2:] == [2] * 10                   # re-ranked once the new channel held 3 frames
    assert np.array_equal(r.table[2], np.argsort(-b, kind="stable"))
    assert 1 in r.table and 2 in r.table
    for _ in range(4):
        last = r.update(np.full(N_DATA, 10.0) + rng.normal(0, 0.2, N_DATA))
    assert last.tag == 0 and r.rank is None


def test_ranker_tags_cycle_through_1_to_15():
    r = CarrierRanker(min_frames=1, min_reissue_frames=1, reissue_db=0.0)
    rng = np.random.default_rng(3)
    seen = []
    for _ in range(20):
        p = _selective(rng)
        r.profile = None                          # a fresh channel each time
        seen.append(r.update(p).tag)
    assert seen[:15] == list(range(1, 16)) and seen[15] == 1
