"""Carrier-ranking feedback over the GNU Radio link: snr_feedback ranks the carriers of a static
multipath channel, jscc_tx maps the strong codec symbols onto them, jscc_rx undoes it; a receiver
that never issued the ranking reports the image as failed instead of decoding scrambled symbols."""
import json

import numpy as np
import pytest

gr = pytest.importorskip("gnuradio.gr")

from gnuradio.medjscc.blocks._pmtutil import make_pdu  # noqa: E402
from gnuradio.medjscc.blocks._phyadapt import make_params  # noqa: E402
from gnuradio.medjscc.blocks.jscc_rx import JsccReceiverCore  # noqa: E402
from gnuradio.medjscc.blocks.jscc_tx import encode_frames  # noqa: E402
from gnuradio.medjscc.blocks.snr_feedback import snr_feedback  # noqa: E402
from qa_helpers import shared_codec, synthetic_image  # noqa: E402
from qa_phy_impairments_bench import _bench  # noqa: E402  (the bench script, loaded as a module)

pytestmark = pytest.mark.gnuradio


def _rows(capsys, args):
    assert _bench().main(args) == 0
    return {r["profile"]: r for r in (json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip())}


def test_ranked_carriers_recover_most_of_the_multipath_loss(capsys):
    common = ["--json", "--images", "4", "--snr", "10", "--profiles", "multipath_3tap"]
    plain = _rows(capsys, common)
    # generous waits: on a loaded machine a frame's feedback can lag the last by more than the
    # bench's 0.3 s, and the next image would go out before the ranking (no frame is lost here,
    # so the wait ends as soon as every frame's feedback came)
    fed = _rows(capsys, common + ["--csi-feedback", "--feedback-timeout", "60", "--feedback-quiet", "10"])
    mp, clean = fed["multipath_3tap"], fed["clean"]
    assert clean["images_csi"] == 0                      # AWGN: a flat channel gets no ranking
    assert mp["images_csi"] >= 2                         # the first image teaches, the next ones use it
    assert mp["images_decoded"] == 4 and mp["frames_decoded"] == mp["frames_sent"]
    # the same images and channel draws: the ranked mapping is worth > 0.3 dB over 4 images
    # (one of them still sent without it); measured about +0.8 dB with 6 images
    assert mp["roi_psnr"] > plain["multipath_3tap"]["roi_psnr"] + 0.3, (mp, plain["multipath_3tap"])
    # no ranking on AWGN, so the same images: only the SNR fed back to the TX may differ a little
    # (the stop-and-wait run designs each image for the estimate fed back so far)
    assert abs(clean["roi_psnr"] - plain["clean"]["roi_psnr"]) < 0.15


def test_receiver_refuses_a_ranking_it_never_issued():
    codec, params = shared_codec(), make_params()
    rank = np.random.default_rng(1).permutation(params.n_data_carriers)
    img = synthetic_image(256, 2)
    _, frames = encode_frames(codec, img, None, 10.0, 1 / 16, 3, params, nonce=9, carrier_rank=rank, csi_tag=4)
    assert {m["csi_tag"] for m, _ in frames} == {4}

    def receive(core):
        done = []
        for meta, pay in frames:
            done += core.add_frame(dict(meta, crc_ok=True, snr_db=20.0), pay)
        done += core.flush()
        assert len(done) == 1
        return done[0]

    stranger = receive(JsccReceiverCore(codec, params))
    assert not stranger["decoded"] and stranger["status"] == "failed" and stranger["csi_tag"] == 4
    assert "csi_tag=4" in stranger["error"] and "snr_feedback" in stranger["error"]
    assert np.all(stranger["image"] == 128)             # what the receiver shows: grey, not scrambled
    core = JsccReceiverCore(codec, params)
    core.note_csi({"csi_tag": 4, "carrier_rank": rank.astype(np.int32)})
    issued = receive(core)
    assert issued["decoded"] and issued["csi_tag"] == 4
    diff = issued["image"].astype(float) - img.astype(float)
    assert 10 * np.log10(255 ** 2 / np.mean(diff ** 2)) > 25


def test_snr_feedback_publishes_the_ranking_of_a_static_selective_channel():
    fb = snr_feedback(alpha=1.0)
    out = []
    fb._publish = lambda snr, pdu: out.append(snr)
    k = np.arange(48)
    profile = (10 + 6 * np.cos(2 * np.pi * k * 3 / 64)).astype(np.float32)
    for seq in range(4):
        fb._handle(make_pdu({"crc_ok": True, "image_id": 0, "seq": seq, "snr_db": 10.0,
                             "carrier_snr_db": profile}, np.zeros(4, np.complex64)))
    assert [o["csi_tag"] for o in out] == [0, 0, 1, 1]
    assert np.array_equal(np.asarray(out[-1]["carrier_rank"]), np.argsort(-profile, kind="stable"))
    fb.set_csi(False)
    fb._handle(make_pdu({"crc_ok": True, "seq": 5, "snr_db": 10.0, "carrier_snr_db": profile},
                        np.zeros(4, np.complex64)))
    assert out[-1]["csi_tag"] == 0                      # withdrawn once: the TX goes back to the fixed interleaver
    fb._handle(make_pdu({"crc_ok": True, "seq": 6, "snr_db": 10.0, "carrier_snr_db": profile},
                        np.zeros(4, np.complex64)))
    assert "csi_tag" not in out[-1]
    fb.set_csi(True)                                    # on again: new tags, never a reused one
    for seq in range(7, 10):
        fb._handle(make_pdu({"crc_ok": True, "seq": seq, "snr_db": 10.0, "carrier_snr_db": profile},
                            np.zeros(4, np.complex64)))
    assert out[-1]["csi_tag"] == 2
