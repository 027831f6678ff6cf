"""Image sink: a QT widget that shows the image PDUs of ``jscc_rx`` (``image``) or ``jscc_tx``
(``sent_image``) as a grayscale picture with the ROI outline and a line of metrics.

Input ``image``: PDU of uint8 pixels, row-major, metadata ``height`` and ``width`` (a square
image is assumed when they are missing), optionally ``mask`` (uint8 vector of the same size,
non-zero = ROI) and any of ``psnr``, ``roi_psnr``, ``snr_est_db``, ``status``, ``image_id``.
Input ``metrics`` (optional): the metrics dicts of ``jscc_rx``; those of the image on show (same
``image_id``) fill the text line. Without a ``mask`` in the PDU the outline comes from
``mask_path`` (non-zero = ROI), which must have the size of the image on show (the codec size:
a mask of another size is never stretched onto it; a warning names both sizes, no outline).

GNU Radio calls the message handlers from its own thread; Qt widgets may only be touched from the
GUI thread, so the handler only decodes the PDU and emits a Qt signal, which Qt queues to the
widget's thread. The widget is created with the block (the flowgraph is built in the GUI thread,
after the QApplication): ``qwidget()`` returns it for the layout, as the C++ QT sinks do.
"""
from __future__ import annotations

import logging
import math
import threading

import numpy as np
import pmt
from gnuradio import gr
from PyQt5 import QtCore, QtGui, QtWidgets

from ..errors import InputError
from ._pmtutil import split_pdu

log = logging.getLogger(__name__)
OUTLINE_RGB = (255, 200, 0)          # amber: visible on black lung fields and white bone alike
_KEEP_METRICS = 16                   # metrics of the last images, matched to the image by image_id


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a boolean mask: ROI pixels with a 4-neighbour outside the ROI (or on the
    image border)."""
    m = np.asarray(mask, bool)
    p = np.pad(m, 1, constant_values=False)
    inner = p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m & ~inner


def _fmt_db(info, key, label):
    v = info.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return f"{label} {v:.1f} dB"
    return None


def info_text(info: dict) -> str:
    """The metrics line under the picture: what the metadata/metrics carry, nothing invented."""
    parts = []
    if info.get("image_id") is not None:
        parts.append(f"image {info['image_id']}")
    parts += filter(None, (_fmt_db(info, "psnr", "PSNR"), _fmt_db(info, "roi_psnr", "ROI-PSNR"),
                           _fmt_db(info, "snr_est_db", "est. SNR")))
    if info.get("status"):
        parts.append(str(info["status"]))
    if info.get("frames_total"):
        parts.append(f"frames {info.get('frames_ok', '?')}/{info['frames_total']}")
    return "  |  ".join(parts)


class ImageView(QtWidgets.QWidget):
    """Title, picture (scaled to the widget, aspect kept, ROI outline drawn) and a text line.
    Touch only from the GUI thread; other threads go through :attr:`show_requested`."""

    show_requested = QtCore.pyqtSignal(object)      # (gray uint8 HxW, outline bool HxW | None, text)

    def __init__(self, title: str = "", min_size: int = 256, parent=None):
        super().__init__(parent)
        self._gray, self._outline = None, None
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.title = QtWidgets.QLabel(title)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.title.setFont(font)
        self.title.setAlignment(QtCore.Qt.AlignCenter)
        self.picture = QtWidgets.QLabel("waiting for an image...")
        self.picture.setAlignment(QtCore.Qt.AlignCenter)
        self.picture.setMinimumSize(int(min_size), int(min_size))
        # Ignored: the scaled pixmap must not push the layout (it would grow the window each image)
        self.picture.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Ignored)
        self.picture.setStyleSheet("background-color: black; color: gray;")
        # the picture is re-scaled whenever its own label changes size, not only the whole view's
        self.picture.installEventFilter(self)
        self.text = QtWidgets.QLabel("")
        self.text.setAlignment(QtCore.Qt.AlignCenter)
        # one line reserved from the start: the first status text must not shrink the picture
        self.text.setMinimumHeight(self.text.fontMetrics().lineSpacing())
        self.text.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        layout.addWidget(self.title)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.text)
        # queued when emitted from another thread (the receiver lives in the GUI thread)
        self.show_requested.connect(self._on_show)

    @QtCore.pyqtSlot(object)
    def _on_show(self, item):
        gray, outline, text = item
        if gray is not None:
            self._gray, self._outline = gray, outline
        self.text.setText(text)
        self._render()

    def eventFilter(self, obj, event):
        if obj is self.picture and event.type() == QtCore.QEvent.Resize:
            self._render()
        return super().eventFilter(obj, event)

    def _render(self):
        if self._gray is None:
            return
        h, w = self._gray.shape
        # QImage over the numpy buffer: bytesPerLine given, the array kept alive until copied
        gray = np.ascontiguousarray(self._gray)
        qimg = QtGui.QImage(gray.data, w, h, w, QtGui.QImage.Format_Grayscale8).copy()
        size = self.picture.contentsRect().size()
        if size.width() < 2 or size.height() < 2:
            return
        pix = QtGui.QPixmap.fromImage(qimg).scaled(size, QtCore.Qt.KeepAspectRatio,
                                                   QtCore.Qt.SmoothTransformation)
        if self._outline is not None and self._outline.any():
            rgba = np.zeros((h, w, 4), np.uint8)
            rgba[self._outline] = (*OUTLINE_RGB, 255)
            overlay = QtGui.QImage(rgba.data, w, h, 4 * w, QtGui.QImage.Format_RGBA8888).copy()
            # nearest neighbour: the outline stays a crisp line, about one source pixel thick
            overlay = overlay.scaled(pix.size(), QtCore.Qt.IgnoreAspectRatio, QtCore.Qt.FastTransformation)
            painter = QtGui.QPainter(pix)
            painter.drawImage(0, 0, overlay)
            painter.end()
        self.picture.setPixmap(pix)


class image_sink(gr.basic_block):
    """QT display of image PDUs (grayscale, ROI outline, PSNR / ROI-PSNR / est. SNR / status).

    Args:
        title: shown above the picture.
        mask_path: ROI mask for the outline when the PDUs carry no ``mask`` ('' = none), of the
            size of the images on show.
        min_size: minimum edge of the picture in pixels.
    """

    def __init__(self, title: str = "Image", mask_path: str = "", min_size: int = 256):
        gr.basic_block.__init__(self, name="medjscc_image_sink", in_sig=None, out_sig=None)
        if int(min_size) < 16:
            raise InputError(f"image_sink min_size must be >= 16 pixels, got {min_size}")
        if QtWidgets.QApplication.instance() is None:
            raise InputError("image_sink needs a running QApplication (a QT GUI flowgraph)")
        self._lock = threading.Lock()
        self._mask_path, self._mask_cache = "", {}
        self._current = None              # (image_id, gray, outline, meta) of the picture on show
        self._metrics = {}                # image_id -> metrics dict
        self.shown = 0                    # images handed to the widget (tests, diagnostics)
        self._widget = ImageView(str(title), int(min_size))
        self.set_mask_path(mask_path)
        self.message_port_register_in(pmt.intern("image"))
        self.message_port_register_in(pmt.intern("metrics"))
        self.set_msg_handler(pmt.intern("image"), self._handle_image)
        self.set_msg_handler(pmt.intern("metrics"), self._handle_metrics)

    def qwidget(self):
        return self._widget

    def widget(self) -> ImageView:
        return self._widget

    # --- GRC callbacks ---
    def set_title(self, title: str):
        # callbacks run in the GUI thread (GRC variables change from widgets)
        self._widget.title.setText(str(title))

    def set_mask_path(self, mask_path: str):
        with self._lock:
            self._mask_path, self._mask_cache = str(mask_path or ""), {}

    def _file_mask(self, shape):
        """The mask file for images of ``shape`` (cached per shape); None when unset, unreadable or
        of another size."""
        with self._lock:
            path = self._mask_path
            if not path:
                return None
            if shape not in self._mask_cache:
                from ._codecadapt import read_mask

                try:
                    self._mask_cache[shape] = read_mask(path, shape)
                except Exception as e:       # a bad mask must not stop the display
                    log.warning("image_sink: cannot read ROI mask %s: %s", path, e)
                    self._mask_cache[shape] = None
            return self._mask_cache[shape]

    # --- message handlers (GNU Radio's thread) ---
    def _handle_image(self, msg):
        try:
            meta, data = split_pdu(msg)
        except ValueError:
            return
        if data is None or len(data) == 0:
            return
        pixels = np.clip(np.asarray(data), 0, 255).astype(np.uint8)
        h, w = int(meta.get("height", 0) or 0), int(meta.get("width", 0) or 0)
        if h * w != pixels.size:
            side = math.isqrt(pixels.size)
            if side * side != pixels.size:
                log.warning("image_sink: %d pixels and no matching height/width; dropped", pixels.size)
                return
            h = w = side
        gray = pixels.reshape(h, w)
        mask = meta.pop("mask", None)
        if mask is not None and np.asarray(mask).size == gray.size:
            mask = np.asarray(mask).reshape(h, w) != 0
        else:
            mask = self._file_mask((h, w))
        outline = mask_outline(mask) if mask is not None else None
        self._current = (meta.get("image_id"), gray, outline, meta)
        self.shown += 1
        self._publish(with_picture=True)

    def _handle_metrics(self, msg):
        try:
            m = pmt.to_python(msg)
        except Exception:
            return
        if not isinstance(m, dict):
            return
        self._metrics[m.get("image_id")] = m
        while len(self._metrics) > _KEEP_METRICS:
            del self._metrics[next(iter(self._metrics))]
        if self._current is not None and self._current[0] == m.get("image_id"):
            self._publish(with_picture=False)

    def _publish(self, with_picture: bool):
        image_id, gray, outline, meta = self._current
        info = {**meta, **self._metrics.get(image_id, {})} if image_id is not None else dict(meta)
        self._widget.show_requested.emit((gray if with_picture else None, outline, info_text(info)))
