"""QA: frames lost on the air are sent again (jscc_tx max_retransmissions, jscc_rx retransmit_hold_s).

The receiver keeps an image whose frames did not all come, its verdict on ``ack`` names the missing
ones, the transmitter sends exactly those again, and the receiver decodes the completed image again.
The hybrid codec is the case that needs it: a lost frame takes a third of every base codeword's
bits, so its base fails without the frame."""
import time

import numpy as np
import pmt
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio import gr  # noqa: E402

from gnuradio.medjscc.blocks._codecadapt import get_codec  # noqa: E402
from gnuradio.medjscc.blocks._msgtools import pdu_collector, post  # noqa: E402
from gnuradio.medjscc.blocks._phyadapt import make_params  # noqa: E402
from gnuradio.medjscc.blocks._pmtutil import complex_pdu, make_pdu, to_pmt  # noqa: E402
from gnuradio.medjscc.blocks.jscc_rx import JsccReceiverCore, ack_message, jscc_rx  # noqa: E402
from gnuradio.medjscc.blocks.jscc_tx import encode_frames, jscc_tx  # noqa: E402
from gnuradio.medjscc.errors import InputError  # noqa: E402
from gnuradio.medjscc.snr import complex_awgn  # noqa: E402
from qa_helpers import HANG_S, synthetic_image  # noqa: E402

SNR = 15.0


@pytest.fixture(scope="module")
def hybrid():
    return get_codec("hybrid_softcast")


@pytest.fixture(scope="module")
def noisy_frames(hybrid):
    image = synthetic_image(256, seed=4)
    params = make_params({})
    _, frames = encode_frames(hybrid, image, None, SNR, 1 / 16, 3, params, nonce=77)
    rng = np.random.default_rng(0)
    out = [(dict(m, snr_db=SNR, crc_ok=True), (p + complex_awgn(p.size, SNR, rng)).astype(np.complex64))
           for m, p in frames]
    assert len(out) == 3   # CBR 1/16 of 256x256 at the default frame size
    return params, out


def test_receiver_keeps_an_image_with_a_lost_frame_and_completes_it(hybrid, noisy_frames):
    params, frames = noisy_frames
    core = JsccReceiverCore(hybrid, params, (256, 256), 1 / 16, retransmit_hold_s=5.0)
    for i, (m, p) in enumerate(frames):
        if i != 1:
            assert core.add_frame(m, p) == []
    (first,) = core.expire(0.0, now=time.monotonic() + 1.0)
    # without its second frame the base fails: the receiver says which frame it lacks
    assert (first["attempt"], first["frames_missing"], first["decoded"]) == (1, [1], False)
    assert first["base_ok"] is False
    ack = ack_message(first)
    assert ack["frames_missing"] == [1] and "attempt" not in ack and ack["decoded"] is False
    assert core.held_images == 1
    # a copy of a frame it already has is a late duplicate, not a retransmission
    assert core.add_frame(*frames[0]) == [] and core.frames_dropped == 1
    (second,) = core.add_frame(*frames[1])
    assert (second["attempt"], second["status"], second["decoded"], second["base_ok"]) == (2, "decoded", True, True)
    assert "frames_missing" not in second and "frames_missing" not in ack_message(second)
    assert ack_message(second)["attempt"] == 2
    assert core.held_images == 0 and core.images_completed_by_retransmission == 1
    # the same frame once more: the image is over
    assert core.add_frame(*frames[1]) == [] and core.frames_dropped == 2


def test_receiver_without_hold_forgets_and_a_held_image_expires(hybrid, noisy_frames):
    params, frames = noisy_frames
    core = JsccReceiverCore(hybrid, params, (256, 256), 1 / 16)   # off: today's behaviour
    for m, p in frames[:2]:
        core.add_frame(m, p)
    (r,) = core.expire(0.0, now=time.monotonic() + 1.0)
    assert r["frames_missing"] == [2] and core.held_images == 0
    assert "frames_missing" not in ack_message(r)                    # nothing to send again for
    assert core.add_frame(*frames[2]) == []                         # a late frame of an ended image
    held = JsccReceiverCore(hybrid, params, (256, 256), 1 / 16, retransmit_hold_s=0.5)
    for m, p in frames[:2]:
        held.add_frame(m, p)
    held.expire(0.0, now=time.monotonic() + 1.0)
    assert held.held_images == 1
    held.expire(60.0, now=time.monotonic() + 2.0)                   # its hold ran out: frames forgotten
    assert held.held_images == 0 and held.assembler.keys() == []
    with pytest.raises(ValueError):
        JsccReceiverCore(hybrid, params, retransmit_hold_s=-1.0)


def _wait(cond, what):
    deadline = time.monotonic() + HANG_S
    while not cond():
        assert time.monotonic() < deadline, f"hang: {what}"
        time.sleep(0.01)


def _running_tx_with_one_image(hybrid, **kw):
    """A started jscc_tx (its frames collected) that has sent the 3 frames of one image."""
    tx = jscc_tx(model=hybrid, image_size=256, snr_db=SNR, **kw)
    tb = gr.top_block()
    col = pdu_collector()
    tb.msg_connect(tx, "frames", col, "in")
    tb.start()
    try:
        post(tx, "image", make_pdu({"height": 256, "width": 256}, synthetic_image(256, seed=4).reshape(-1)))
        assert col.wait_for(3, HANG_S)
    except BaseException:
        tb.stop()
        tb.wait()
        raise
    return tx, tb, col


def test_transmitter_sends_only_the_named_frames_at_most_n_times(hybrid):
    tx, tb, col = _running_tx_with_one_image(hybrid, max_retransmissions=1, feedback_policy="olla")
    try:
        for m in ({"image_id": 0, "nonce": tx.nonce, "decoded": False, "attempt": 1, "frames_missing": [2]},
                  {"image_id": 0, "nonce": tx.nonce, "decoded": False, "attempt": 2, "frames_missing": [2]},
                  {"image_id": 5, "nonce": tx.nonce, "decoded": False, "frames_missing": [0]},
                  {"image_id": 0, "nonce": (tx.nonce + 1) % 65536, "decoded": False, "frames_missing": [0]}):
            post(tx, "ack", to_pmt(m))
        _wait(lambda: tx.acks_received >= 3, "jscc_tx took no verdict")
        time.sleep(0.1)
    finally:
        tb.stop()
        tb.wait()
    sent = [m for m, _ in col.items]
    assert [m["seq"] for m in sent] == [0, 1, 2, 2]                 # frame 2 again, once (max 1)
    assert sent[3]["retransmission"] == 1 and sent[3]["image_id"] == 0
    assert (tx.retransmissions, tx.frames_retransmitted, tx.acks_received) == (1, 1, 3)
    assert tx.history[0]["retransmissions"] == 1
    # the verdicts on first transmissions (image 0's and image 5's) steer the MCS; attempt 2's not
    assert tx.policy.acks == [0, 2]
    with pytest.raises(InputError):
        tx.set_max_retransmissions(-1)


def test_a_retransmission_lost_again_is_sent_again_then_given_up(hybrid):
    """No verdict on a retransmission: it was lost too. await_verdicts sends it again after
    RETRANSMIT_TIMEOUT_S, within max_retransmissions, then gives the image up."""
    tx, tb, col = _running_tx_with_one_image(hybrid, max_retransmissions=2)
    tx.RETRANSMIT_TIMEOUT_S = 0.2
    try:
        assert not tx.await_verdicts(0.05)      # no verdict at all: given up, not waited for again
        assert tx.await_verdicts(0.05)
        post(tx, "ack", to_pmt({"image_id": 0, "nonce": tx.nonce, "decoded": False, "frames_missing": [1]}))
        _wait(lambda: tx.retransmissions == 1, "no retransmission")
        assert tx.await_verdicts(HANG_S)         # resent once more after 0.2 s, then out of tries
        assert col.wait_for(5, HANG_S)
        time.sleep(0.3)
    finally:
        tb.stop()
        tb.wait()
    assert [m["seq"] for m, _ in col.items] == [0, 1, 2, 1, 1]
    assert [m.get("retransmission") for m, _ in col.items][3:] == [1, 2]
    assert tx.retransmissions == 2 and tx.history[0]["retransmissions"] == 2


def test_without_pacing_the_next_snr_message_retries_a_lost_retransmission(hybrid):
    tx, tb, col = _running_tx_with_one_image(hybrid, max_retransmissions=3)
    tx.RETRANSMIT_TIMEOUT_S = 0.05
    try:
        post(tx, "ack", to_pmt({"image_id": 0, "nonce": tx.nonce, "decoded": False, "frames_missing": [0, 2]}))
        _wait(lambda: tx.retransmissions == 1, "no retransmission")
        time.sleep(0.1)
        post(tx, "snr", to_pmt({"snr_db": 14.0}))
        _wait(lambda: tx.retransmissions == 2, "the lost retransmission was not retried")
        post(tx, "ack", to_pmt({"image_id": 0, "nonce": tx.nonce, "decoded": True, "attempt": 3}))
        _wait(lambda: tx.acks_received == 2, "verdict not taken")
        time.sleep(0.1)
        post(tx, "snr", to_pmt({"snr_db": 14.0}))   # answered: nothing more goes
        time.sleep(0.2)
    finally:
        tb.stop()
        tb.wait()
    assert [m["seq"] for m, _ in col.items] == [0, 1, 2, 0, 2, 0, 2] and tx.retransmissions == 2


class _drop_first_copy(gr.basic_block):
    """Passes frame PDUs on, dropping the first copy of frame ``seq`` of each image (a lost frame)."""

    def __init__(self, seq: int):
        gr.basic_block.__init__(self, name="drop_first_copy", in_sig=None, out_sig=None)
        self.seq, self.seen = int(seq), set()
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("out"))
        self.set_msg_handler(pmt.intern("in"), self._handle)

    def _handle(self, msg):
        pdu = complex_pdu(msg)
        if pdu is not None:
            key = (pdu[0]["image_id"], pdu[0]["seq"])
            if pdu[0]["seq"] == self.seq and key not in self.seen:
                self.seen.add(key)
                return
        self.message_port_pub(pmt.intern("out"), msg)


def test_a_dropped_frame_comes_back_and_the_image_decodes(hybrid):
    """jscc_tx -> a link that loses frame 1 of every image once -> jscc_rx, verdicts back on ack."""
    tx = jscc_tx(model=hybrid, image_size=256, snr_db=SNR, max_retransmissions=2)
    rx = jscc_rx(model=hybrid, image_size=256, snr_source="fixed", snr_db=SNR, timeout_s=0.2,
                 retransmit_hold_s=30.0)
    link = _drop_first_copy(1)
    tb = gr.top_block()
    tb.msg_connect(tx, "frames", link, "in")
    tb.msg_connect(link, "out", rx, "pdus")
    tb.msg_connect(rx, "ack", tx, "ack")
    tb.start()
    try:
        for k in range(2):
            post(tx, "image", make_pdu({"height": 256, "width": 256}, synthetic_image(256, seed=5 + k).reshape(-1)))
            assert tx.await_verdicts(HANG_S), "the lost frame's verdict did not come back"
            _wait(lambda: rx.images_decoded >= k + 1, "the image did not decode")
    finally:
        tb.stop()
        tb.wait()
    firsts = [r for r in rx.results if r["attempt"] == 1]
    seconds = [r for r in rx.results if r["attempt"] == 2]
    assert [r["frames_missing"] for r in firsts] == [[1], [1]]
    assert all(not r["decoded"] for r in firsts)                    # the base was lost with the frame
    assert [r["status"] for r in seconds] == ["decoded", "decoded"]
    assert (rx.images_total, rx.images_decoded, tx.retransmissions) == (2, 2, 2)
