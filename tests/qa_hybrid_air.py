"""QA: the hybrid codec over the GNU Radio OFDM link (issue #13 part 3): the loopback on AWGN and on a
radio profile (DAC full scale, CFO, phase noise, IQ imbalance), and the closed loop in which the fed-back
SNR picks the base MCS."""
import numpy as np
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio import gr  # noqa: E402

from gnuradio.medjscc.blocks._phyadapt import make_params  # noqa: E402
from gnuradio.medjscc.blocks.channel_preset import channel_preset  # noqa: E402
from gnuradio.medjscc.blocks.jscc_rx import jscc_rx  # noqa: E402
from gnuradio.medjscc.blocks.jscc_tx import jscc_tx  # noqa: E402
from gnuradio.medjscc.blocks.loopback import run_ofdm_loopback  # noqa: E402
from gnuradio.medjscc.blocks.ofdm_analog_rx import ofdm_analog_rx  # noqa: E402
from gnuradio.medjscc.blocks.ofdm_analog_tx import ofdm_analog_tx  # noqa: E402
from gnuradio.medjscc.blocks.snr_feedback import snr_feedback  # noqa: E402
from gnuradio.medjscc.codec import hybrid, load_codec  # noqa: E402
from gnuradio.medjscc.config import LinkConfig  # noqa: E402
from gnuradio.medjscc.metrics import image_metrics  # noqa: E402
from gnuradio.medjscc.snr import complex_awgn  # noqa: E402
from qa_helpers import channel_stepper, connect_stepped_loop  # noqa: E402


@pytest.fixture(scope="module")
def drrs():
    from gnuradio.medjscc.demo import _load_images

    images, masks, _ = _load_images(2, 0)
    return images, masks


@pytest.fixture(scope="module")
def codec():
    return load_codec("hybrid_softcast")


def _symbol_link_roi_psnr(codec, image, mask, snr_db, seed=0):
    enc = codec.encode(image, mask, snr_db, 1 / 16)
    y = enc.symbols + complex_awgn(enc.symbols.shape, snr_db, np.random.default_rng(seed))
    return image_metrics(image, codec.decode(y, enc.side_info, image.shape, snr_db=snr_db), mask)["roi_psnr"]


@pytest.mark.parametrize("profile", ["awgn", "b200_pair_2g4"])
def test_hybrid_over_the_ofdm_link(codec, drrs, profile):
    """Every image decodes with its base, within 1 dB of the same codec on the symbol link at the
    nominal SNR (the OFDM RX's own channel and SNR estimates, pilots, CFO correction in between)."""
    images, masks = drrs
    cfg = LinkConfig.from_dict({"codec": {"cbr": 1 / 16}})
    res = run_ofdm_loopback(images, masks, cfg, [6.0, 16.0], channel=profile, codec=codec)
    assert len(res) == 4
    for r in res:
        i = r["image_index"]
        assert r["status"] == "decoded" and r["decoded"], r
        assert r["shown"] == "hybrid" and r["base_ok"] is True and r["design_snr_db"] == r["snr_db"]
        assert r["cbr_total"] == pytest.approx(1 / 16)
        air = image_metrics(images[i], r["received"], masks[i])["roi_psnr"]
        ref = _symbol_link_roi_psnr(codec, images[i], masks[i], r["snr_db"])
        assert air > ref - 1.0, (profile, r["snr_db"], i, air, ref)


def test_feedback_picks_the_base_mcs(codec, drrs, tmp_path):
    """Closed loop (stop-and-wait): the channel drops from 20 to 5 dB after image 2. The TX lays the
    next images out for the fed-back SNR: the base MCS steps down with it and the images decode
    with their base again; the one image sent on the stale 20 dB layout loses its base."""
    from PIL import Image

    images, masks = drrs
    path, mpath = tmp_path / "x.png", tmp_path / "m.png"
    Image.fromarray(images[0]).save(path)
    Image.fromarray(masks[0].astype(np.uint8) * 255).save(mpath)
    n_images, step_after = 6, 2
    params = make_params({})
    tb = gr.top_block()
    tx = jscc_tx(image_path=str(path), mask_path=str(mpath), model=codec, snr_db=20.0, repeat=n_images,
                 wait_for_feedback=True, feedback_timeout_s=60.0, params=params)
    otx = ofdm_analog_tx(params=params)
    chan = channel_preset("awgn", 20.0, params=params, seed=4)
    orx = ofdm_analog_rx(params=params)
    step = channel_stepper(chan, step_after, 5.0)
    fb = snr_feedback(alpha=0.3, jump_db=3.0)
    rx = jscc_rx(model=codec, snr_source="frames", params=params, timeout_s=60.0)
    connect_stepped_loop(tb, tx, otx, chan, orx, rx, step, fb)
    tb.run()
    assert step.stepped
    res = sorted(rx.results, key=lambda r: r["image_id"])
    assert [r["image_id"] for r in res] == list(range(n_images))
    design = [r["design_snr_db"] for r in res]
    assert design[0] == 20.0 and abs(design[step_after + 1] - 20.0) < 1.0, design
    # the image sent before the step's feedback came back is laid out for 20 dB: its base fails and
    # it is not counted; from the next image on the layout follows the fed-back ~5 dB
    stale = res[step_after + 1]
    assert not stale["decoded"] and stale["base_ok"] is False, stale
    rest = res[:step_after + 1] + res[step_after + 2:]
    assert all(r["decoded"] and r["shown"] == "hybrid" for r in rest), [(r["status"], r.get("error")) for r in rest]
    assert all(abs(d - 5.0) < 1.0 for d in design[step_after + 3:]), design
    high, low = res[1]["layout"], res[-1]["layout"]
    assert high.split("+")[0] != low.split("+")[0], (high, low)   # another base MCS
    planned = [hybrid.layout(4080, d, hybrid.split_rule(d, cbr=4080 / images[0].size)).label for d in (design[1], design[-1])]
    assert planned == [high, low]


def test_two_layer_base_survives_dac_clipping(drrs):
    """Told the nominal SNR through DAC clipping at full scale (the channel delivers less than the
    encoder was given): the one-layer hybrid loses its base (grey plus residual, status failed);
    hybrid_layered loses only its finer layer and shows the first one (decoded, partial)."""
    images, masks = drrs
    cfg = LinkConfig.from_dict({"codec": {"cbr": 1 / 16}})
    one = run_ofdm_loopback(images[:1], masks[:1], cfg, [15.0], channel="clip_1p0", codec=load_codec("hybrid_softcast"))
    two = run_ofdm_loopback(images[:1], masks[:1], cfg, [15.0], channel="clip_1p0", codec=load_codec("hybrid_layered"))
    assert one[0]["shown"] == "analog_over_grey" and not one[0]["decoded"], one[0]
    r = two[0]
    assert r["shown"] == "first_layer" and r["decoded"] and r["status"] == "decoded_partial", r
    assert r["base_layers"] == 1 and r["base_ok"] is True
    roi = lambda res: image_metrics(images[0], res["received"], masks[0])["roi_psnr"]   # noqa: E731
    assert roi(r) > 22.0 and roi(r) > roi(one[0]) + 8.0
