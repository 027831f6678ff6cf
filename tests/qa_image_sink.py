"""QA: the QT image sink shows the posted X-ray (not a blank), with the ROI outline and the metrics
line, updated from GNU Radio's message thread through a Qt signal (offscreen platform)."""
import os
import time

import numpy as np
import pytest

pytestmark = pytest.mark.gnuradio

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pmt = pytest.importorskip("pmt")
QtWidgets = pytest.importorskip("PyQt5.QtWidgets")

from gnuradio import gr  # noqa: E402

from gnuradio.medjscc import paths  # noqa: E402
from gnuradio.medjscc.blocks._codecadapt import fit_image, read_image, read_mask  # noqa: E402
from gnuradio.medjscc.blocks._pmtutil import make_pdu, to_pmt  # noqa: E402
from gnuradio.medjscc.blocks.image_sink import OUTLINE_RGB, image_sink, info_text, mask_outline  # noqa: E402

SIZE = 256


@pytest.fixture(scope="module")
def app():
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


@pytest.fixture(scope="module")
def xray():
    img = fit_image(read_image(paths.sample_image())[0], (SIZE, SIZE))
    return img, read_mask(paths.sample_mask(), (SIZE, SIZE))


class _sender(gr.basic_block):
    """Publishes what the test gives it, as jscc_rx's image/metrics ports would."""

    def __init__(self):
        gr.basic_block.__init__(self, name="sender", in_sig=None, out_sig=None)
        for port in ("image", "metrics"):
            self.message_port_register_out(pmt.intern(port))

    def send(self, port, msg):
        self.message_port_pub(pmt.intern(port), msg)


def _pump(app, cond, timeout=120.0):   # a hang guard: a loaded machine is only slower
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("image sink did not update within the timeout")
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()


def _grab_picture(view):
    """The picture label as drawn on screen (widget.grab), as a float RGB array."""
    qimg = view.picture.grab().toImage().convertToFormat(4)      # QImage.Format_RGB32
    w, h = qimg.width(), qimg.height()
    ptr = qimg.bits()
    ptr.setsize(qimg.byteCount())
    bgra = np.frombuffer(ptr, np.uint8).reshape(h, qimg.bytesPerLine() // 4, 4)[:, :w]
    return bgra[..., 2::-1].astype(float)           # BGRA -> RGB


def _run(app, sink, messages, until):
    tb = gr.top_block()
    src = _sender()
    tb.msg_connect(src, "image", sink, "image")
    tb.msg_connect(src, "metrics", sink, "metrics")
    tb.start()
    try:
        for port, msg in messages:
            src.send(port, msg)
        _pump(app, until)
    finally:
        tb.stop()
        tb.wait()


def test_mask_outline_is_the_boundary():
    m = np.zeros((7, 7), bool)
    m[1:6, 2:5] = True
    out = mask_outline(m)
    assert out[1, 2:5].all() and out[5, 2:5].all() and out[1:6, 2].all() and out[1:6, 4].all()
    assert not out[2:5, 3].any() and not (out & ~m).any()


def test_info_text_shows_only_what_is_known():
    t = info_text({"image_id": 3, "psnr": 31.24, "roi_psnr": float("nan"), "snr_est_db": 14.96,
                   "status": "ok"})
    assert t == "image 3  |  PSNR 31.2 dB  |  est. SNR 15.0 dB  |  ok"
    assert info_text({}) == ""


def test_shows_posted_xray_with_roi_outline_and_metrics(app, xray):
    img, mask = xray
    sink = image_sink(title="Received image", mask_path=paths.sample_mask(), min_size=300)
    view = sink.qwidget()
    view.resize(420, 420)
    view.show()
    meta = {"image_id": 7, "height": SIZE, "width": SIZE, "status": "ok"}
    _run(app, sink, [("image", make_pdu(meta, img.reshape(-1))),
                     ("metrics", to_pmt({"image_id": 7, "psnr": 33.3, "roi_psnr": 35.1, "snr_est_db": 14.2,
                                         "status": "ok"}))],
         until=lambda: "ROI-PSNR 35.1 dB" in view.text.text())
    assert view.text.text() == "image 7  |  PSNR 33.3 dB  |  ROI-PSNR 35.1 dB  |  est. SNR 14.2 dB  |  ok"

    shot = _grab_picture(view)
    # the picture: the non-black bounding box of the label (aspect kept -> centred square)
    lum = shot.mean(axis=2)
    ys, xs = np.nonzero(lum > 8)
    box = shot[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    assert min(box.shape[:2]) >= 280, box.shape           # scaled up to the widget, not a thumbnail
    from PIL import Image

    gray = np.asarray(Image.fromarray(box.mean(axis=2).astype(np.uint8)).resize((SIZE, SIZE), Image.BILINEAR),
                      float)
    # amber outline pixels: R high, B low; they lie on the mask's contour
    amber = (box[..., 0] > 200) & (box[..., 1] > 150) & (box[..., 2] < 60)
    assert amber.sum() > 200, "no ROI outline drawn"
    amber_small = np.asarray(Image.fromarray(amber.astype(np.uint8) * 255).resize((SIZE, SIZE), Image.NEAREST)) > 0
    near_contour = np.zeros_like(mask)
    edge = mask_outline(mask)
    for dy in (-2, -1, 0, 1, 2):
        for dx in (-2, -1, 0, 1, 2):
            near_contour |= np.roll(np.roll(edge, dy, 0), dx, 1)
    assert (amber_small & near_contour).sum() / amber_small.sum() > 0.9
    # the shown picture is the posted X-ray (outline pixels aside), not a blank or another image
    keep = ~near_contour
    corr = np.corrcoef(gray[keep], img.astype(float)[keep])[0, 1]
    assert corr > 0.9, corr
    assert np.corrcoef(gray[keep], np.rot90(img).astype(float)[keep])[0, 1] < corr - 0.2


def test_pdu_mask_and_updates_follow_each_image(app, xray):
    img, mask = xray
    sink = image_sink(title="Sent image", min_size=64)
    view = sink.qwidget()
    view.resize(300, 300)
    view.show()
    inverted = (255 - img).reshape(-1)
    msgs = [("image", make_pdu({"image_id": 1, "height": SIZE, "width": SIZE}, img.reshape(-1))),
            ("image", make_pdu({"image_id": 2, "height": SIZE, "width": SIZE,
                                "mask": mask.astype(np.uint8).reshape(-1)}, inverted))]
    _run(app, sink, msgs, until=lambda: view.text.text().startswith("image 2"))
    assert sink.shown == 2
    shot = _grab_picture(view)
    lum = shot.mean(axis=2)
    centre = lum[lum.shape[0] // 2 - 40:lum.shape[0] // 2 + 40, lum.shape[1] // 2 - 40:lum.shape[1] // 2 + 40]
    # the second image (the inverted X-ray) is on show, not the first
    ref = 255.0 - img[SIZE // 2 - 30:SIZE // 2 + 30, SIZE // 2 - 30:SIZE // 2 + 30]
    assert abs(centre.mean() - ref.mean()) < 40, (centre.mean(), ref.mean())
    amber = (shot[..., 0] > 200) & (shot[..., 1] > 150) & (shot[..., 2] < 60)
    assert amber.sum() > 100, "the PDU's own mask draws the outline"
    assert tuple(OUTLINE_RGB) == (255, 200, 0)


def test_rejects_bad_size(app):
    from gnuradio.medjscc.errors import InputError

    with pytest.raises(InputError, match="min_size"):
        image_sink(min_size=4)


def test_picture_is_rescaled_when_the_first_status_line_appears(app, xray):
    """The first image arrives with no status text; when its text line appears the picture label
    gets shorter. The pixmap must follow the label, not stay scaled for the old size (it was drawn
    cropped: the GUI end-to-end test then saw a 0.79 correlation instead of ~0.95)."""
    from gnuradio.medjscc.blocks.image_sink import ImageView

    img, _ = xray
    view = ImageView("Received")
    view.resize(700, 700)
    view.show()
    app.processEvents()
    view._on_show((np.asarray(img, np.uint8), None, ""))
    app.processEvents()
    view._on_show((np.asarray(img, np.uint8), None, "image 0  |  PSNR 39.1 dB  |  decoded"))
    for _ in range(5):
        app.processEvents()
    pm, label = view.picture.pixmap(), view.picture.contentsRect()
    assert pm.width() <= label.width() and pm.height() <= label.height(), (pm.size(), label.size())
    assert max(pm.width(), pm.height()) >= min(label.width(), label.height()) - 2     # still fills it
    view.close()
