"""QA: run_ofdm_loopback (the demo's flowgraph API) and OFDM vs symbol-channel quality."""
import numpy as np
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio.medjscc import metrics  # noqa: E402
from gnuradio.medjscc.blocks.loopback import run_ofdm_loopback  # noqa: E402
from gnuradio.medjscc.config import LinkConfig  # noqa: E402
from gnuradio.medjscc.errors import MedJSCCError  # noqa: E402
from qa_helpers import shared_codec, synthetic_image  # noqa: E402

KEYS = {"snr_db", "image_index", "received", "snr_est_db", "frames_ok", "frames_total"}


def lung_mask(size=256):
    y, x = np.mgrid[0:size, 0:size] / size
    return ((x - 0.35) ** 2 / 0.02 + (y - 0.5) ** 2 / 0.08 < 1) | ((x - 0.65) ** 2 / 0.02 + (y - 0.5) ** 2 / 0.08 < 1)


def test_loopback_results_per_image_and_snr():
    codec = shared_codec()
    images = [synthetic_image(256, seed=s) for s in (1, 2)]
    masks = [lung_mask(), None]
    res = run_ofdm_loopback(images, masks, LinkConfig(), [5.0, 20.0], channel="awgn", codec=codec)
    assert len(res) == 4
    assert [(r["snr_db"], r["image_index"]) for r in res] == [(5.0, 0), (5.0, 1), (20.0, 0), (20.0, 1)]
    for r in res:
        assert KEYS <= set(r)
        assert r["received"].shape == (256, 256) and r["received"].dtype == np.uint8
        assert r["frames_ok"] == r["frames_total"] >= 1
        assert abs(r["snr_est_db"] - r["snr_db"]) < 1.0
        assert r["error"] == ""
        assert 0 < r["cbr_total"] <= 1 / 16 * 1.05
    # the same symbols decoded at 20 dB are at least as close to the original as at 5 dB
    p5 = metrics.psnr(images[0], res[0]["received"])
    p20 = metrics.psnr(images[0], res[2]["received"])
    assert p20 >= p5 - 0.5   # (speed is measured in bench/grblocks_speed.py, not asserted here)


def test_loopback_multipath_with_cfo_and_bad_args():
    codec = shared_codec()
    cfg = LinkConfig.from_dict({"channel": {"cfo": 0.2}, "ofdm": {"equalizer": "zf"}})
    res = run_ofdm_loopback([synthetic_image(256)], None, cfg, [15.0], channel="multipath", codec=codec)
    assert res[0]["frames_ok"] == res[0]["frames_total"]
    assert abs(res[0]["snr_est_db"] - 15.0) < 1.5
    with pytest.raises(MedJSCCError, match="channel"):
        run_ofdm_loopback([synthetic_image(256)], None, cfg, [15.0], channel="moon", codec=codec)
    with pytest.raises(MedJSCCError, match="masks"):
        run_ofdm_loopback([synthetic_image(256)], [None, None], cfg, [15.0], codec=codec)


@pytest.mark.slow
def test_ofdm_matches_symbol_channel_roi_psnr_at_15db():
    """Issue target: OFDM loopback at 15 dB within 0.5 dB ROI-PSNR of the symbol channel."""
    from gnuradio.medjscc.codec.channel import numpy_channel
    codec = shared_codec()
    images = [synthetic_image(256, seed=s) for s in range(4)]
    mask = lung_mask()
    ofdm = run_ofdm_loopback(images, [mask] * 4, LinkConfig(), [15.0], codec=codec)
    ofdm_roi = [metrics.roi_psnr(img, r["received"], mask) for img, r in zip(images, ofdm)]
    sym_roi = []
    rng = np.random.default_rng(0)
    for img in images:
        enc = codec.encode(img, mask, snr_db=15.0, cbr=1 / 16)
        rx = numpy_channel(enc.symbols, kind="awgn", snr_db=15.0, rng=rng)
        sym_roi.append(metrics.roi_psnr(img, codec.decode(rx, enc.side_info, enc.shape, snr_db=15.0), mask))
    assert abs(np.mean(ofdm_roi) - np.mean(sym_roi)) < 0.5, (ofdm_roi, sym_roi)
