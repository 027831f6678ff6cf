"""ROI Segmenter: image PDU in -> the same PDU out with the lung ROI mask in its metadata.

Input on message port ``in``: a PDU whose vector is the image as u8 pixels (row-major) and whose
metadata holds ``height`` and ``width`` (a square image may omit them). Output on ``out``: the
same vector and metadata plus

* ``mask``: u8vector 0/1, ``height*width`` (what ``jscc_tx`` reads on its ``image`` port);
* ``roi_mask_coded``: u8vector, the grid mask coded by ``roi.sideinfo.encode_mask``;
* ``roi_grid_h``, ``roi_grid_w``: the latent grid (``grid_factor`` pixels per cell, 16 -> 16x16
  for 256x256); ``roi_mask_bits``: its size in bits; ``roi_grid``: u8vector 0/1 of the grid;
* ``roi_backend``, ``roi_source`` (coarse/threshold/prompt/ground-truth/whole-image),
  ``roi_fallback`` (reason, only when the whole image became the ROI), ``roi_seconds``.

A PDU may carry a prompt in ``roi_box`` (x0, y0, x1, y1) or ``roi_point`` (x, y). A malformed PDU
is dropped with a logged error (the flowgraph keeps running). The heavy work lives in
``gnuradio.medjscc.roi``; this block only adapts PMTs.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import pmt
from gnuradio import gr

from ._pmtutil import make_pdu, split_pdu

log = logging.getLogger(__name__)


class roi_segmenter(gr.basic_block):
    """Args:
        backend: ``auto`` (default), ``litemedsam``, ``sam2`` or ``oracle``.
        checkpoint: SAM 2 / MedSAM-2 checkpoint (backend ``sam2``, or ``auto`` refined by SAM 2).
        config: SAM 2 config name or YAML path (default sam2.1 hiera-tiny).
        grid_factor: pixels per latent-grid cell for the coded side information (16).
        threads: torch CPU threads (0 = leave as is).
        segmenter: a ready ``Segmenter`` object (Python API; overrides backend/checkpoint/config).
    """

    def __init__(self, backend: str = "auto", checkpoint: str = "", config: str = "", grid_factor: int = 16,
                 threads: int = 2, segmenter=None):
        gr.basic_block.__init__(self, name="roi_segmenter", in_sig=None, out_sig=None)
        from ..errors import InputError
        from ..roi import get_segmenter

        if int(grid_factor) < 1:
            raise InputError(f"roi_segmenter: grid_factor must be >= 1, got {grid_factor}")
        self.grid_factor = int(grid_factor)
        self.backend = str(backend or "auto")
        self.segmenter = segmenter if segmenter is not None else get_segmenter(
            self.backend, sam2_checkpoint=checkpoint or None, sam2_config=config or None,
            threads=int(threads) or None)
        self.processed = 0
        self.dropped = 0
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("out"))
        self.set_msg_handler(pmt.intern("in"), self.handle_msg)

    @staticmethod
    def _image_from(meta: dict, data) -> np.ndarray:
        if data is None:
            raise ValueError("PDU has no u8 vector")
        pix = np.asarray(data)
        if pix.dtype != np.uint8:
            raise ValueError(f"PDU vector must be u8 pixels, got {pix.dtype}")
        h, w = meta.get("height"), meta.get("width")
        if h is None or w is None:
            side = int(round(np.sqrt(pix.size)))
            if side * side != pix.size:
                raise ValueError("PDU metadata lacks height/width and the image is not square")
            h = w = side
        h, w = int(h), int(w)
        if h * w != pix.size:
            raise ValueError(f"PDU has {pix.size} pixels but height*width = {h}x{w}")
        return pix.reshape(h, w)

    @staticmethod
    def _prompt_from(meta: dict):
        box, point = meta.get("roi_box"), meta.get("roi_point")
        if box is None and point is None:
            return None
        prompt = {}
        if box is not None:
            prompt["boxes"] = np.asarray(box, np.float32).reshape(-1, 4)
        if point is not None:
            prompt["points"] = np.asarray(point, np.float32).reshape(-1, 2)
        return prompt

    def segment_pdu(self, meta: dict, data) -> tuple[dict, np.ndarray]:
        """Pure-Python core (also used by tests): returns the output (meta, pixels)."""
        from ..roi.imageutil import fallback_warnings_logged_only
        from ..roi.sideinfo import encode_mask, mask_to_grid

        image = self._image_from(meta, data)
        t0 = time.perf_counter()
        with fallback_warnings_logged_only():   # logged by the segmenter; no process-wide filter
            mask = self.segmenter.segment(image, self._prompt_from(meta))
        h, w = image.shape
        grid = (max(1, -(-h // self.grid_factor)), max(1, -(-w // self.grid_factor)))
        grid_mask = mask_to_grid(mask, grid)
        coded = encode_mask(grid_mask)
        info = getattr(self.segmenter, "last_info", {}) or {}
        out = dict(meta)
        out.update({"height": h, "width": w, "mask": mask.astype(np.uint8).ravel(),
                    "roi_mask_coded": coded, "roi_grid_h": grid[0], "roi_grid_w": grid[1],
                    "roi_mask_bits": 8 * len(coded), "roi_grid": grid_mask.astype(np.uint8).ravel(),
                    "roi_backend": self.backend, "roi_source": str(info.get("source", "")),
                    "roi_seconds": float(time.perf_counter() - t0)})
        if info.get("fallback"):
            out["roi_fallback"] = str(info["fallback"])
        return out, image.ravel()

    def handle_msg(self, msg):
        from ..errors import MedJSCCError

        try:
            meta, data = split_pdu(msg)
            out_meta, pixels = self.segment_pdu(meta, data)
        except (ValueError, MedJSCCError) as e:
            self.dropped += 1
            log.error("roi_segmenter: dropped a PDU: %s", e)
            return
        self.processed += 1
        self.message_port_pub(pmt.intern("out"), make_pdu(out_meta, pixels))
