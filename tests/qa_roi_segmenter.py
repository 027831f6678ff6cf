"""QA: roi_segmenter block turns an image PDU into the same PDU with the ROI mask in metadata."""
import numpy as np
import pytest

pytestmark = pytest.mark.gnuradio

import pmt  # noqa: E402
from gnuradio import gr_unittest  # noqa: E402

from gnuradio.medjscc.blocks._pmtutil import make_pdu  # noqa: E402
from gnuradio.medjscc.blocks.roi_segmenter import roi_segmenter  # noqa: E402
from gnuradio.medjscc.roi.imageutil import box_of, dice, regions  # noqa: E402
from gnuradio.medjscc.roi.segmenters import PromptedSegmenter  # noqa: E402
from gnuradio.medjscc.roi.sideinfo import decode_mask, mask_to_grid  # noqa: E402
from qa_helpers import run_message_block  # noqa: E402
from test_roi import phantom  # noqa: E402


class _BoxSegmenter:
    """Deterministic stand-in: the mask is the prompt box; no prompt -> whole-image fallback."""
    last_info = {}

    def segment(self, image, prompt=None):
        m = np.zeros(image.shape, bool)
        if prompt is None:
            self.last_info = {"source": "whole-image", "fallback": "no lung region found"}
            return ~m
        x0, y0, x1, y1 = np.asarray(prompt["boxes"]).reshape(-1, 4)[0].astype(int)
        m[y0:y1 + 1, x0:x1 + 1] = True
        self.last_info = {"source": "prompt"}
        return m


class qa_roi_segmenter(gr_unittest.TestCase):
    def test_pdu_gets_mask_grid_and_coded_side_info(self):
        img, _ = phantom(64)
        blk = roi_segmenter(segmenter=_BoxSegmenter(), grid_factor=16)
        pdus = [make_pdu({"height": 64, "width": 64, "roi_box": np.array([8.0, 4.0, 30.0, 50.0]), "name": "a"},
                         img.ravel()),
                make_pdu({"height": 64, "width": 64}, img.ravel()),
                pmt.intern("not a pdu"),                                   # dropped, no crash
                make_pdu({"height": 10, "width": 10}, img.ravel())]        # wrong size: dropped
        # the last PDU (wrong size) is dropped after the two outputs: wait for that, not a fixed time
        items = run_message_block(blk, "in", pdus, "out", until=lambda items: len(items) >= 2 and blk.dropped >= 2)
        self.assertEqual(len(items), 2)
        self.assertEqual(blk.dropped, 2)
        (meta, data), (meta2, _) = items
        np.testing.assert_array_equal(np.asarray(data, np.uint8), img.ravel())   # pixels unchanged
        self.assertEqual(meta["name"], "a")
        mask = np.asarray(meta["mask"]).reshape(64, 64).astype(bool)
        expect = np.zeros((64, 64), bool)
        expect[4:51, 8:31] = True
        np.testing.assert_array_equal(mask, expect)
        grid = (int(meta["roi_grid_h"]), int(meta["roi_grid_w"]))
        self.assertEqual(grid, (4, 4))
        coded = bytes(np.asarray(meta["roi_mask_coded"], np.uint8))
        np.testing.assert_array_equal(decode_mask(coded, grid), mask_to_grid(expect, grid))
        np.testing.assert_array_equal(np.asarray(meta["roi_grid"]).reshape(grid).astype(bool),
                                      mask_to_grid(expect, grid))
        self.assertEqual(int(meta["roi_mask_bits"]), 8 * len(coded))
        self.assertNotIn("roi_fallback", meta)
        # no prompt -> the stand-in falls back: metadata says so, the mask is all ROI
        self.assertEqual(meta2["roi_fallback"], "no lung region found")
        self.assertTrue(np.asarray(meta2["mask"]).all())

    def test_real_litemedsam_through_the_block(self):
        from gnuradio.medjscc.roi.litemedsam import LiteMedSAM

        img, lungs = phantom(128)
        box = box_of(regions(lungs)[0], 2)
        seg = PromptedSegmenter(LiteMedSAM(adapter=None), "litemedsam", points_ok=False)
        blk = roi_segmenter(backend="litemedsam", segmenter=seg)
        items = run_message_block(blk, "in", [make_pdu({"height": 128, "width": 128, "roi_box": box},
                                                       img.ravel())], "out", expected=1, timeout=120)
        meta, _ = items[0]
        mask = np.asarray(meta["mask"]).reshape(128, 128).astype(bool)
        x0, y0, x1, y1 = box.astype(int)
        region = np.zeros_like(lungs)
        region[y0:y1 + 1, x0:x1 + 1] = True
        self.assertGreater(dice(mask, lungs & region), 0.8)
        self.assertEqual(meta["roi_backend"], "litemedsam")
        self.assertLessEqual(int(meta["roi_mask_bits"]), 256)


if __name__ == "__main__":
    gr_unittest.run(qa_roi_segmenter)
