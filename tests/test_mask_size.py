"""A mask must have the size of the image it belongs to (issue #14): jscc_tx, jscc_rx, image_sink's
reader and the tx/rx/eval command lines raise an InputError naming both sizes and both files instead
of stretching the mask onto the image (which puts the ROI on other anatomy without a word)."""
import numpy as np
import pytest
from PIL import Image

from gnuradio.medjscc.blocks._codecadapt import read_mask
from gnuradio.medjscc.errors import InputError

pytestmark = pytest.mark.gnuradio


def _files(tmp_path, image_hw=(96, 128), mask_hw=(96, 128)):
    """An image and a mask (ROI = the left third) of the given sizes; returns their paths."""
    y, x = np.mgrid[0:image_hw[0], 0:image_hw[1]]
    Image.fromarray((40 + (x + y) % 180).astype(np.uint8)).save(tmp_path / "img.png")
    m = np.zeros(mask_hw, np.uint8)
    m[:, : mask_hw[1] // 3] = 1
    Image.fromarray(m).save(tmp_path / "roi.png")
    return tmp_path / "img.png", tmp_path / "roi.png"


def _names_both(err, image_hw, mask_hw, *files):
    text = str(err)
    assert f"{mask_hw[1]}x{mask_hw[0]}" in text and f"{image_hw[1]}x{image_hw[0]}" in text, text
    for f in files:
        assert str(f) in text, text


def test_reader_never_stretches_a_mask(tmp_path):
    img, roi = _files(tmp_path, mask_hw=(64, 64))
    # with the image's own size: named both
    with pytest.raises(InputError) as e:
        read_mask(roi, (256, 256), img, (96, 128))
    _names_both(e.value, (96, 128), (64, 64), img, roi)
    # without it the mask must have the target size: a 64x64 mask is not stretched to 256x256
    with pytest.raises(InputError) as e:
        read_mask(roi, (256, 256))
    _names_both(e.value, (256, 256), (64, 64), roi)
    # the matching mask is fitted exactly like its image (pad: 128 wide -> 256, 96 high -> 192 + bars)
    img, roi = _files(tmp_path)
    m = read_mask(roi, (256, 256), img, (96, 128))
    assert m.shape == (256, 256)
    assert not m[:32].any() and not m[-32:].any()              # the black bars hold no ROI
    assert m[32:224, :83].all() and not m[32:224, 86:].any()   # left third (42 px), 2x the size


def _tx(path, mask, codec, **kw):
    from gnuradio.medjscc.blocks.jscc_tx import jscc_tx

    return jscc_tx(image_path=str(path), mask_path=str(mask), model=codec, image_size=64,
                   cbr=1 / 16, snr_db=10.0, **kw)


def test_jscc_tx_file_mask_of_another_size_is_an_error(tmp_path):
    from gnuradio import gr
    from gnuradio.medjscc.blocks._msgtools import pdu_collector
    from qa_helpers import shared_codec

    codec = shared_codec()
    img, roi = _files(tmp_path, mask_hw=(128, 96))          # transposed: same area, wrong size
    tx = _tx(img, roi, codec)
    tb = gr.top_block()
    col = pdu_collector()
    tb.msg_connect(tx, "frames", col, "in")
    tb.run()                                                # file mode ends by itself (eos)
    assert col.items == ["eos"] and tx.history == []        # nothing sent with a stretched mask
    assert len(tx.errors) == 1
    _names_both(tx.errors[0], (96, 128), (128, 96), img, roi)


def test_jscc_tx_sends_a_matching_mask_fitted_like_its_image(tmp_path):
    """Positive control: the frames carry exactly the side info of the image and mask both padded
    to 64x64 (a silently resized or dropped mask would change it)."""
    from gnuradio import gr
    from gnuradio.medjscc.blocks._codecadapt import fit_image
    from gnuradio.medjscc.blocks._msgtools import pdu_collector
    from gnuradio.medjscc.blocks._phyadapt import header_from_meta
    from gnuradio.medjscc.phy import ImageAssembler
    from qa_helpers import shared_codec

    codec = shared_codec()
    img, roi = _files(tmp_path)
    tx = _tx(img, roi, codec)
    tb = gr.top_block()
    col, sent_col = pdu_collector(), pdu_collector()
    tb.msg_connect(tx, "frames", col, "in")
    tb.msg_connect(tx, "sent_image", sent_col, "in")
    tb.run()
    assert tx.errors == [] and len(tx.history) == 1
    asm = ImageAssembler(tx.params)
    for meta, data in col.items[:-1]:
        asm.add(header_from_meta(meta), data)
    sent = asm.assemble(0)
    raw = np.asarray(Image.open(img))
    m = np.asarray(Image.open(roi)) > 0
    want_img = fit_image(raw, (64, 64))
    want_mask = fit_image(m.astype(np.uint8) * 255, (64, 64)) >= 128
    assert want_mask.any() and not want_mask.all()
    from gnuradio.medjscc.blocks.jscc_tx import DEFAULT_REPEAT_STRONG

    enc = codec.encode(want_img, want_mask, snr_db=10.0, cbr=1 / 16, repeat_strong=DEFAULT_REPEAT_STRONG)
    no_mask = codec.encode(want_img, None, snr_db=10.0, cbr=1 / 16, repeat_strong=DEFAULT_REPEAT_STRONG)
    assert sent.side_info == enc.side_info
    assert enc.side_info != no_mask.side_info               # the mask is really in the side info
    sent_meta, sent_pixels = sent_col.items[0]              # displays get the mask as encoded
    assert np.array_equal(np.asarray(sent_pixels, np.uint8).reshape(64, 64), want_img)
    assert np.array_equal(np.asarray(sent_meta["mask"]).reshape(64, 64) > 0, want_mask)


def test_jscc_tx_pdu_mask_of_another_size_is_reported():
    from gnuradio import gr
    from gnuradio.medjscc.blocks._msgtools import pdu_collector, post
    from gnuradio.medjscc.blocks._pmtutil import make_pdu
    from gnuradio.medjscc.blocks.jscc_tx import jscc_tx
    from qa_helpers import shared_codec, synthetic_image, wait_until

    tx = jscc_tx(model=shared_codec(), image_size=64)
    tb = gr.top_block()
    col = pdu_collector()
    tb.msg_connect(tx, "frames", col, "in")
    tb.start()
    try:
        post(tx, "image", make_pdu({"height": 64, "width": 64, "mask": np.ones(32 * 32, np.uint8)},
                                   synthetic_image(64).reshape(-1)))
        wait_until(lambda: tx.errors, what="the bad PDU reported")
    finally:
        tb.stop()
        tb.wait()
    assert tx.history == [] and col.items == []
    assert "1024 pixels" in tx.errors[0] and "64x64" in tx.errors[0], tx.errors


def test_jscc_tx_send_image_mask_of_another_size_is_an_error():
    from qa_helpers import shared_codec, synthetic_image

    from gnuradio.medjscc.blocks.jscc_tx import jscc_tx

    tx = jscc_tx(model=shared_codec(), image_size=64)
    with pytest.raises(InputError) as e:
        tx.send_image(synthetic_image(64), np.ones((32, 32), bool), source="pdu-7")
    _names_both(e.value, (64, 64), (32, 32), "pdu-7")
    assert tx.history == []


def test_jscc_rx_reference_mask_of_another_size_is_an_error(tmp_path):
    from gnuradio.medjscc.blocks.jscc_rx import jscc_rx
    from qa_helpers import shared_codec

    img, roi = _files(tmp_path, mask_hw=(64, 64))
    with pytest.raises(InputError) as e:
        jscc_rx(model=shared_codec(), image_size=64, reference_path=str(img),
                reference_mask_path=str(roi))
    _names_both(e.value, (96, 128), (64, 64), img, roi)
    # the matching mask of a 128x96 reference is padded like the reference (ROI = left third)
    img, roi = _files(tmp_path)
    rx = jscc_rx(model=shared_codec(), image_size=64, reference_path=str(img),
                 reference_mask_path=str(roi))
    m = rx.core.reference_mask
    assert m.shape == (64, 64) and not m[:8].any() and m[8:56, :21].all() and not m[8:56, 22:].any()


def test_cli_tx_and_rx_reject_a_mask_of_another_size(tmp_path, capsys):
    """Before any codec, radio or socket: one line naming both files and both sizes."""
    from gnuradio.medjscc import cli

    img, roi = _files(tmp_path, mask_hw=(64, 64))
    rc = cli.main(["tx", str(img), "--zmq", "tcp://127.0.0.1:1", "--mask", str(roi)])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    _names_both(err, (96, 128), (64, 64), img, roi)
    rc = cli.main(["rx", "--zmq", "tcp://127.0.0.1:1", "--reference", str(img),
                   "--reference-mask", str(roi), "--duration", "1"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    _names_both(err, (96, 128), (64, 64), img, roi)


def test_cli_eval_rejects_a_mask_of_another_size(tmp_path, capsys):
    from gnuradio.medjscc import cli

    (tmp_path / "set" / "images").mkdir(parents=True)
    (tmp_path / "set" / "masks").mkdir()
    img, roi = _files(tmp_path / "set" / "images", mask_hw=(64, 64))
    roi = roi.rename(tmp_path / "set" / "masks" / "img.png")
    rc = cli.main(["eval", "--data", str(tmp_path / "set"), "--split", "none", "--snr", "10",
                   "--cbr", "1/16", "--threads", "1", "--json"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    _names_both(err, (96, 128), (64, 64), img, roi)
