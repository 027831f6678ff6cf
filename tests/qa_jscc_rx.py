"""QA: jscc_rx assembles frames (loss, duplicates, reordering, bad headers), decodes, reports."""
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pmt
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio import gr, gr_unittest  # noqa: E402

from gnuradio.medjscc.blocks._msgtools import pdu_collector, post  # noqa: E402
from gnuradio.medjscc.blocks._phyadapt import make_params  # noqa: E402
from gnuradio.medjscc.blocks._pmtutil import make_pdu  # noqa: E402
from gnuradio.medjscc.blocks.jscc_rx import jscc_rx  # noqa: E402
from gnuradio.medjscc.blocks.jscc_tx import encode_frames  # noqa: E402
from gnuradio.medjscc.snr import complex_awgn  # noqa: E402
from qa_helpers import shared_codec, synthetic_image  # noqa: E402

SNR = 15.0
HANG_S = 120.0   # deadline for a result: only a real hang gets near it (no timing is tested here)


def assert_same_decode(a, b):
    """Decodes in a GNU Radio thread vs the test thread may differ by float summation order
    (torch thread pools): allow +-1 grey level on a few pixels, nothing more."""
    d = np.abs(a.astype(int) - b.astype(int))
    assert d.max() <= 1 and d.mean() < 0.01, (d.max(), d.mean())


class qa_jscc_rx(gr_unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.codec = shared_codec()
        # 96 symbols/frame -> ~40 frames/image; 6-byte side-info chunks -> any 3 frames rebuild it
        cls.params = make_params({"symbols_per_frame": 2, "header_side_info_bytes": 6})
        cls.image = synthetic_image(256, seed=1)
        cls.enc, frames = encode_frames(cls.codec, cls.image, None, SNR, 1 / 16, 5, cls.params)
        rng = np.random.default_rng(0)
        # each frame at its own SNR (as a fading link gives): the image's estimate must combine them
        cls.frame_snrs = SNR + rng.uniform(-4.0, 4.0, len(frames))
        cls.frames = []
        for (meta, pay), s in zip(frames, cls.frame_snrs):
            meta = dict(meta, snr_db=float(s), crc_ok=True)
            cls.frames.append((meta, (pay + complex_awgn(pay.size, s, rng)).astype(np.complex64)))
        from gnuradio.medjscc.phy.framing import deinterleave
        # the frames carry the symbols interleaved: the codec order is restored on assembly
        from gnuradio.medjscc.phy.framing import balanced_per

        cls.rx_symbols = deinterleave(np.concatenate([p for _, p in cls.frames]),
                                      balanced_per(cls.enc.symbols.size, cls.params.max_payload_len))
        # documented combination: the mean noise variance over the frames (not the mean of dB values)
        cls.snr_est = float(10 * np.log10(1 / np.mean(10 ** (-cls.frame_snrs / 10))))
        assert abs(cls.snr_est - float(np.mean(cls.frame_snrs))) > 0.2  # the two rules differ here

    def run_rx(self, frames, extra=(), expire_after_s=None, **kw):
        """Post ``frames`` to a running jscc_rx and wait for its first metrics.

        Images end by completion, by the next image or at stop; the block's timeout is set beyond
        any real delay so a loaded machine cannot cut an image in two. With ``expire_after_s`` the
        timeout path is exercised once every frame has been handled (a sentinel PDU with a failed
        CRC, counted as dropped, marks that point).
        """
        kw.setdefault("timeout_s", HANG_S)
        rx = jscc_rx(model=self.codec, params=self.params, **kw)
        tb = gr.top_block()
        col_m, col_i = pdu_collector(), pdu_collector()
        tb.msg_connect(rx, "metrics", col_m, "in")
        tb.msg_connect(rx, "image", col_i, "in")
        tb.start()
        try:
            for m in extra:
                post(rx, "pdus", m)
            for meta, pay in frames:
                post(rx, "pdus", make_pdu(meta, pay))
            if expire_after_s is not None:
                assert not extra
                post(rx, "pdus", make_pdu({"crc_ok": False}, np.zeros(0, np.complex64)))
                deadline = time.monotonic() + HANG_S
                while rx.core.frames_dropped < 1:
                    self.assertLess(time.monotonic(), deadline, "jscc_rx did not handle its frames (hang)")
                    time.sleep(0.01)
                rx.set_timeout_s(expire_after_s)
            self.assertTrue(col_m.wait_for(1, HANG_S), "jscc_rx produced no metrics (hang)")
            # the image port has a collector (and a thread) of its own: its first message may still
            # wait in that collector's queue, and stop() would discard it (seen on a loaded machine)
            self.assertTrue(col_i.wait_for(1, HANG_S), "jscc_rx published no image (hang)")
        finally:
            tb.stop()
            tb.wait()
        return rx, col_m.items, col_i.items

    def test_complete_image_decodes_like_the_codec(self):
        with tempfile.TemporaryDirectory() as d:
            from PIL import Image
            ref = Path(d) / "ref.png"
            Image.fromarray(self.image).save(ref)
            rx, metrics, images = self.run_rx(self.frames, out_dir=d, reference_path=str(ref))
            self.assertTrue((Path(d) / "rx_00005.png").is_file())
        direct = self.codec.decode(self.rx_symbols, self.enc.side_info, (256, 256), snr_db=self.snr_est)
        r = rx.results[0]
        assert_same_decode(r["image"], direct)
        self.assertEqual((r["frames_ok"], r["frames_total"]), (len(self.frames), len(self.frames)))
        self.assertAlmostEqual(r["snr_est_db"], self.snr_est, places=5)
        self.assertEqual(r["decode_snr_db"], r["snr_est_db"])   # snr_source "frames"
        self.assertEqual(metrics[0]["image_id"], 5)
        self.assertIn("psnr", metrics[0])
        from gnuradio.medjscc.metrics import psnr
        self.assertAlmostEqual(metrics[0]["psnr"], psnr(self.image, r["image"]), places=6)
        self.assertAlmostEqual(metrics[0]["psnr"], psnr(self.image, direct), delta=0.05)
        meta, pix = images[0]
        self.assertEqual((meta["height"], meta["width"]), (256, 256))
        np.testing.assert_array_equal(pix.reshape(256, 256), r["image"])

    def test_duplicates_reordering_and_bad_headers(self):
        rng = np.random.default_rng(1)
        order = list(rng.permutation(len(self.frames)))
        frames = [self.frames[i] for i in order] + self.frames[:3]        # shuffled + duplicates
        bad = [make_pdu({"crc_ok": False, "snr_db": -3.0}, np.zeros(0, np.complex64)),
               make_pdu({"seq": 1}, np.ones(96, np.complex64)),           # header fields missing
               pmt.intern("garbage"), make_pdu({"seq": 0}, np.ones(4, np.float32))]
        rx, metrics, _ = self.run_rx(frames, extra=bad)
        direct = self.codec.decode(self.rx_symbols, self.enc.side_info, (256, 256), snr_db=self.snr_est)
        self.assertEqual(len(rx.results), 1)
        assert_same_decode(rx.results[0]["image"], direct)

    def _lossy(self, fraction, seed):
        rng = np.random.default_rng(seed)
        n = len(self.frames)
        keep = np.ones(n, bool)
        lost = rng.choice(np.arange(1, n), int(round(fraction * n)), replace=False)
        keep[lost] = False
        keep[-1] = False   # the last frame too: the receiver must size the image itself
        return [f for f, k in zip(self.frames, keep) if k], int(keep.sum())

    def test_ten_and_fifty_percent_lost_frames(self):
        for fraction in (0.1, 0.5):
            frames, n_ok = self._lossy(fraction, seed=int(fraction * 10))
            rx, metrics, _ = self.run_rx(frames, expire_after_s=0.3)   # incomplete: decoded on timeout
            r = rx.results[0]
            self.assertEqual(r["error"], "")
            self.assertEqual(r["frames_ok"], n_ok)
            self.assertEqual(r["frames_total"], len(self.frames))
            self.assertTrue(r["side_info_ok"])
            lost_syms = self.rx_symbols.size - sum(p.size for _, p in frames)
            self.assertAlmostEqual(r["erased_fraction"], lost_syms / self.rx_symbols.size, places=6)
            self.assertEqual(r["image"].shape, (256, 256))

    def test_lost_side_info_and_next_image_trigger(self):
        # the side info needs any 3 frames (erasure-coded over the headers): two are not enough,
        # and this model cannot decode without it -- reported, never counted as decoded
        frames = self.frames[7:9]
        nxt = [(dict(m, image_id=6), p) for m, p in self.frames[:1]]
        rx, metrics, images = self.run_rx(frames + nxt)   # image 5 ends when 6 starts
        r = rx.results[0]
        self.assertEqual(r["image_id"], 5)
        self.assertFalse(r["side_info_ok"])
        self.assertEqual((r["status"], r["decoded"]), ("side_info_missing", False))
        self.assertIn("side info missing", r["error"])
        self.assertNotIn("psnr", r)
        self.assertEqual(images[0][0]["status"], "side_info_missing")
        self.assertEqual(r["image"].shape, (256, 256))
        # any three frames bring it back
        rx, metrics, _ = self.run_rx([self.frames[7], self.frames[19], self.frames[30]] + nxt)
        self.assertTrue(rx.results[0]["side_info_ok"])
        self.assertEqual((rx.results[0]["status"], rx.results[0]["decoded"]), ("decoded_partial", True))

    def test_restarted_transmitter_never_merges_with_the_old_one(self):
        # a restarted transmitter reuses image_id 5 with a new nonce: its frames must form their own
        # image, and the old, incomplete one is finished as partial (not a chimera reported complete)
        def session(nonce):
            _, frames = encode_frames(self.codec, self.image, None, SNR, 1 / 16, 5, self.params, nonce=nonce)
            return [(dict(m, snr_db=SNR, crc_ok=True), p) for m, p in frames]

        old, new = session(1)[: len(self.frames) // 2], session(2)
        rx, metrics, _ = self.run_rx(old + new)
        deadline = time.monotonic() + HANG_S
        while len(rx.results) < 2:
            self.assertLess(time.monotonic(), deadline, "second image never finished (hang)")
            time.sleep(0.01)
        first, second = rx.results[:2]
        self.assertEqual((first["nonce"], first["status"]), (1, "decoded_partial"))
        self.assertLess(first["frames_ok"], first["frames_total"])
        self.assertEqual((second["nonce"], second["status"]), (2, "decoded"))
        self.assertEqual(second["frames_ok"], len(self.frames))
        # the same side info travelling under another session's CRC would fail it: it is bound
        corrupt = [(dict(m, nonce=9), p) for m, p in new]
        rx, _, _ = self.run_rx(corrupt)
        self.assertEqual((rx.results[0]["status"], rx.results[0]["decoded"]), ("side_info_corrupt", False))
        direct = self.codec.decode(self.enc.symbols, self.enc.side_info, (256, 256), snr_db=SNR)
        assert_same_decode(second["image"], direct)

    def test_dicom_reference_gives_dicom_output(self):
        import pydicom
        from pydicom.data import get_testdata_file
        ref = get_testdata_file("CT_small.dcm")
        with tempfile.TemporaryDirectory() as d:
            rx, metrics, _ = self.run_rx(self.frames, out_dir=d, reference_path=ref)
            png, dcm = Path(d) / "rx_00005.png", Path(d) / "rx_00005.dcm"
            self.assertTrue(png.is_file() and dcm.is_file())
            ds = pydicom.dcmread(dcm)
            np.testing.assert_array_equal(ds.pixel_array, rx.results[0]["image"])
            self.assertEqual(ds.LossyImageCompression, "01")
            self.assertEqual(ds.Modality, pydicom.dcmread(ref).Modality)   # header reused
        self.assertIn("psnr", metrics[0])

    def test_snr_sources(self):
        rx, _, _ = self.run_rx(self.frames, snr_source="fixed", snr_db=3.0)
        self.assertEqual(rx.results[0]["decode_snr_db"], 3.0)
        with self.assertRaises(ValueError):
            rx.set_snr_source("oracle")


if __name__ == "__main__":
    gr_unittest.run(qa_jscc_rx)


def test_erasure_snr_tells_the_decoder_what_the_zeros_cost():
    from gnuradio.medjscc.blocks.jscc_rx import erasure_snr_db
    assert erasure_snr_db(10.0, 0.0) == 10.0
    a, b = erasure_snr_db(20.0, 0.1), erasure_snr_db(20.0, 1 / 3)
    assert 20.0 > a > b > 0.0
    # one third of the symbols lost: the mean error is dominated by the lost ones
    assert abs(b - 10 * np.log10(1 / ((2 / 3) / 101 + 1 / 3) - 1)) < 1e-9


def test_results_counter_is_never_frozen_by_the_retention_cap():
    """keep_results caps what is retained, not what is counted: a run of more images than the cap
    still ends (``results_total``), and ``results_since`` hands a reader what it has not seen."""
    from qa_helpers import shared_codec, synthetic_image

    codec = shared_codec()
    params = make_params({})
    rx = jscc_rx(model=codec, params=params, keep_results=2)
    seen = 0
    for image_id in range(5):
        _, frames = encode_frames(codec, synthetic_image(256), None, 20.0, 1 / 16, image_id, params, nonce=5)
        for meta, pay in frames:
            rx._handle_pdu(make_pdu(dict(meta, snr_db=20.0, crc_ok=True), pay))
        new, seen_now = rx.results_since(seen)
        assert [(r["image_id"], r["status"]) for r in new] == [(image_id, "decoded")]
        assert seen_now == image_id + 1
        seen = seen_now
    assert rx.results_total == 5 and [r["image_id"] for r in rx.results] == [3, 4]
    new, total = rx.results_since(0)          # a reader that fell behind gets what is retained
    assert total == 5 and [r["image_id"] for r in new] == [3, 4]


class _GatedCodec:
    """The shared codec with a decoder that waits for ``gate``: makes 'the decoder fell behind'
    happen by construction instead of by timing."""

    def __init__(self, codec):
        self._codec, self.gate, self.entered = codec, threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self._codec, name)

    def decode(self, *a, **kw):
        self.entered.set()
        if not self.gate.wait(HANG_S):
            raise RuntimeError("test gate never opened")
        return self._codec.decode(*a, **kw)


def _image_frames(codec, params, n):
    from qa_helpers import synthetic_image

    out = []
    for image_id in range(n):
        _, frames = encode_frames(codec, synthetic_image(256, seed=image_id), None, 20.0, 1 / 16,
                                  image_id, params, nonce=7)
        out.append([make_pdu(dict(m, snr_db=20.0, crc_ok=True), p) for m, p in frames])
    return out


def _wait_until(cond, what):
    deadline = time.monotonic() + HANG_S
    while not cond():
        assert time.monotonic() < deadline, f"{what} (hang)"
        time.sleep(0.01)


def test_decoder_behind_drops_the_oldest_waiting_images_and_counts_them():
    """Issue #14: a decoder that falls behind must not queue without bound nor lose images
    silently. With max_pending_images=2, images 1-3 are dropped (reported, counted) while image 0
    decodes; 4 and 5 wait and are decoded; every image has exactly one result."""
    from qa_helpers import shared_codec

    codec = _GatedCodec(shared_codec())
    params = make_params({})
    images = _image_frames(codec, params, 6)
    rx = jscc_rx(model=codec, params=params, max_pending_images=2, timeout_s=HANG_S)
    tb = gr.top_block()
    col = pdu_collector()
    tb.msg_connect(rx, "metrics", col, "in")
    tb.start()
    try:
        for pdu in images[0]:
            post(rx, "pdus", pdu)
        assert codec.entered.wait(HANG_S), "image 0 never reached the decoder"
        for frames in images[1:]:
            for pdu in frames:
                post(rx, "pdus", pdu)
        _wait_until(lambda: rx.images_dropped == 3, "three images dropped")
        assert rx.backlog() == 3          # image 0 decoding, 4 and 5 waiting
        codec.gate.set()
        _wait_until(lambda: rx.results_total == 6, "every image reported")
    finally:
        codec.gate.set()
        tb.stop()
        tb.wait()
    by_id = {r["image_id"]: r for r in rx.results}
    assert sorted(by_id) == list(range(6)) and rx.results_total == 6
    assert [by_id[i]["status"] for i in range(6)] == ["decoded", "dropped", "dropped", "dropped",
                                                      "decoded", "decoded"]
    assert (rx.images_decoded, rx.images_dropped) == (3, 3)
    for i in (1, 2, 3):
        assert not by_id[i]["decoded"] and "fell behind" in by_id[i]["error"]
        assert by_id[i]["frames_ok"] == by_id[i]["frames_total"] > 0   # the frames did arrive
    assert sorted(m["status"] for m in col.items).count("dropped") == 3   # on the GRC port too


def test_stop_decodes_what_waits_within_its_bound_and_reports_the_rest():
    """Stopping never aborts and never hangs on a backlog: images that could not be decoded
    within stop_timeout_s come out as 'dropped' results, and the block's threads end."""
    from qa_helpers import shared_codec

    codec = _GatedCodec(shared_codec())
    params = make_params({})
    images = _image_frames(codec, params, 4)
    rx = jscc_rx(model=codec, params=params, stop_timeout_s=0.2, timeout_s=HANG_S, max_pending_images=100)
    tb = gr.top_block()
    col = pdu_collector()
    tb.msg_connect(rx, "metrics", col, "in")
    tb.start()
    # opens the gate only once stop() has given up on images 1-3 (the decoder is stuck on 0)
    opener = threading.Thread(target=lambda: (_wait_until(lambda: rx.images_dropped == 3, "drop at stop"),
                                              codec.gate.set()), daemon=True)
    try:
        for frames in images:
            for pdu in frames:
                post(rx, "pdus", pdu)
        _wait_until(lambda: rx.backlog() == 4, "four images ended")
        opener.start()
    finally:
        tb.stop()
        tb.wait()
        codec.gate.set()
    assert not rx._worker.is_alive()
    by_id = {r["image_id"]: r for r in rx.results}
    assert [by_id[i]["status"] for i in range(4)] == ["decoded", "dropped", "dropped", "dropped"]
    assert "receiver stopped" in by_id[1]["error"]
    assert (rx.results_total, rx.images_decoded, rx.images_dropped) == (4, 1, 3)


def test_set_model_switches_the_codec_while_running_and_keeps_it_on_a_bad_name():
    from gnuradio.medjscc.blocks.jscc_tx import jscc_tx
    from gnuradio.medjscc.errors import MedJSCCError

    rx = jscc_rx(model="medjscc", params=make_params({}))
    tx = jscc_tx(model="medjscc", params=make_params({}))
    rx.set_model("ntscc")
    tx.set_model("ntscc")
    assert rx.core.codec.name == "ntscc" and tx.codec.name == "ntscc"
    with pytest.raises(MedJSCCError):
        rx.set_model("nosuchmodel")
    assert rx.core.codec.name == "ntscc"


@pytest.mark.parametrize("stall", ["decode_in_handler", "starved_handler"])
def test_frames_queued_behind_a_busy_handler_never_time_their_image_out(stall, monkeypatch):
    """Issue #14, a loaded receiver: ``timeout_s`` is time without new frames at the block's input,
    not time its handler spent elsewhere. Frames that wait in GNU Radio's queue while the handler is
    busy (decoding in the handler, or a thread starved of CPU) must not let their image expire: it
    would be cut in two, its later frames dropped as late duplicates."""
    from gnuradio.medjscc.blocks import jscc_rx as rx_mod
    from qa_helpers import shared_codec

    codec = _GatedCodec(shared_codec())
    params = make_params({})
    img0, img1 = _image_frames(codec, params, 2)
    assert len(img1) >= 2
    if stall == "decode_in_handler":   # image 0 (its last frame lost) ends at image 1's first frame
        rx = jscc_rx(model=codec, params=params, timeout_s=0.2)   # and is decoded in the handler
        busy, gate = codec.entered, codec.gate
    else:                              # the handler stalls before image 1's second frame
        codec.gate.set()
        busy, gate, real = threading.Event(), threading.Event(), rx_mod.complex_pdu

        def stalling_complex_pdu(msg):
            if pmt.eq(msg, img1[1]):
                busy.set()
                gate.wait(HANG_S)
            return real(msg)

        monkeypatch.setattr(rx_mod, "complex_pdu", stalling_complex_pdu)
        rx = jscc_rx(model=codec, params=params, timeout_s=0.2, max_pending_images=4)
    tb = gr.top_block()
    col = pdu_collector()
    tb.msg_connect(rx, "metrics", col, "in")
    # every frame is at the block's input before it starts, so before any timeout can run out,
    # however loaded the machine is
    for pdu in img0[:-1] + img1:
        post(rx, "pdus", pdu)
    tb.start()
    try:
        assert busy.wait(HANG_S), "the handler never got busy"
        time.sleep(1.0)   # busy for 5x timeout_s (a lower bound: it only lets the old bug show)
        gate.set()
        _wait_until(lambda: rx.results_total == 2, "both images reported")
    finally:
        gate.set()
        tb.stop()
        tb.wait()
    by_id = {r["image_id"]: r for r in rx.results}
    assert by_id[0]["status"] == "decoded_partial"
    assert (by_id[1]["status"], by_id[1]["frames_ok"]) == ("decoded", len(img1)), by_id[1]
    assert rx.core.frames_dropped == 0
