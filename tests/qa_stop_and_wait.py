"""Stop-and-wait pacing: feedback names its image, and late feedback of an older image does not
release the next one (it would be encoded with a stale SNR)."""
import numpy as np
import pytest

gr = pytest.importorskip("gnuradio.gr")

from gnuradio.medjscc.blocks._pmtutil import make_pdu, to_pmt  # noqa: E402
from gnuradio.medjscc.blocks.jscc_tx import IMAGE_ID_MODULO, jscc_tx  # noqa: E402
from gnuradio.medjscc.blocks.snr_feedback import snr_feedback  # noqa: E402
from qa_helpers import shared_codec  # noqa: E402


def test_snr_feedback_states_the_image_it_measured():
    fb = snr_feedback(alpha=1.0)
    out = []
    fb._publish = lambda snr, pdu: out.append(snr)
    fb._handle(make_pdu({"crc_ok": True, "image_id": 7, "seq": 1, "snr_db": 9.5}, np.zeros(4, np.complex64)))
    fb._handle(make_pdu({"crc_ok": True, "seq": 0, "snr_db": 9.0}, np.zeros(4, np.complex64)))
    assert out[0]["image_id"] == 7 and out[0]["seq"] == 1
    assert "image_id" not in out[1]


def test_only_feedback_about_the_awaited_image_or_newer_releases_the_next():
    tx = jscc_tx(model=shared_codec(), image_size=64, snr_db=10.0, wait_for_feedback=True)
    tx.send_image(np.full((64, 64), 100, np.uint8))
    awaited = tx.history[-1]["image_id"]
    assert not tx._feedback.is_set()
    tx._handle_snr(to_pmt({"snr_db": 20.0, "image_id": (awaited - 1) % IMAGE_ID_MODULO}))
    assert not tx._feedback.is_set()                      # an older image's late frame
    assert tx.feedback_count == 1 and tx.snr_db() == pytest.approx(20.0)   # still heard
    tx._handle_snr(to_pmt({"snr_db": 5.0, "image_id": awaited}))
    assert tx._feedback.is_set()
    tx._feedback.clear()
    tx._handle_snr(to_pmt({"snr_db": 5.0}))               # feedback without an image: as before
    assert tx._feedback.is_set()
    tx._awaited_image = IMAGE_ID_MODULO - 1               # wrap-around: 0 is newer than 65535
    assert tx._is_current(0) and not tx._is_current(IMAGE_ID_MODULO - 2)
