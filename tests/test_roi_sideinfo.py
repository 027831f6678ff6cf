"""ROI mask side information: grid reduction and the lossless mask code."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gnuradio.medjscc.errors import InputError, MedJSCCError
from gnuradio.medjscc.roi import sideinfo
from gnuradio.medjscc.roi.sideinfo import (decode_mask, decode_mask_or_all_roi, encode_mask,
                                           grid_to_mask, mask_bits, mask_to_grid)


def _two_lungs(size=256):
    yy, xx = np.mgrid[:size, :size] / size
    left = ((xx - 0.31) / 0.16) ** 2 + ((yy - 0.5) / 0.32) ** 2 < 1
    right = ((xx - 0.69) / 0.16) ** 2 + ((yy - 0.5) / 0.30) ** 2 < 1
    return left | right


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(np.bool_, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24)))
def test_decode_inverts_encode(grid_mask):
    data = encode_mask(grid_mask)
    out = decode_mask(data, grid_mask.shape)
    assert out.dtype == np.bool_ and out.shape == grid_mask.shape
    np.testing.assert_array_equal(out, grid_mask)
    assert mask_bits(grid_mask) == 8 * len(data)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.floats(0, 1), st.integers(0, 2**32 - 1))
def test_roundtrip_biased_random_grids(h, w, p, seed):
    m = np.random.default_rng(seed).random((h, w)) < p
    np.testing.assert_array_equal(decode_mask(encode_mask(m), (h, w)), m)


@pytest.mark.parametrize("pattern", ["zeros", "ones", "checker", "stripes", "single"])
def test_special_patterns(pattern):
    idx = np.indices((16, 16)).sum(0)
    m = {"zeros": np.zeros((16, 16), bool), "ones": np.ones((16, 16), bool),
         "checker": idx % 2 == 1, "stripes": np.indices((16, 16))[1] % 2 == 0,
         "single": idx == 7}[pattern]
    data = encode_mask(m)
    np.testing.assert_array_equal(decode_mask(data, (16, 16)), m)
    assert mask_bits(m) <= 16 * 16 + 16   # never worse than a raw bitmap plus header
    if pattern in ("zeros", "ones"):
        assert mask_bits(m) == 16


def test_chest_mask_is_compact():
    grid = mask_to_grid(_two_lungs(), (16, 16))
    assert 40 < grid.sum() < 200
    # well under the 256-bit target; a raw bitmap would take 256 bits
    assert mask_bits(grid) <= 160
    np.testing.assert_array_equal(decode_mask(encode_mask(grid), (16, 16)), grid)


def test_mask_to_grid_rules():
    m = np.zeros((8, 8), bool)
    m[0, 0] = True                        # one pixel of the top-left 4x4 cell
    m[4:8, 4:7] = True                    # 12/16 of the bottom-right cell
    any_ = mask_to_grid(m, (2, 2))
    np.testing.assert_array_equal(any_, [[True, False], [False, True]])
    np.testing.assert_array_equal(mask_to_grid(m, (2, 2), "majority"), [[False, False], [False, True]])
    np.testing.assert_array_equal(mask_to_grid(m, (2, 2), 0.8), [[False, False], [False, False]])
    # "any": every ROI pixel lies inside a ROI cell
    big = _two_lungs(250)                 # uneven cell sizes (250 / 16)
    g = mask_to_grid(big, (16, 16))
    assert not (big & ~grid_to_mask(g, big.shape)).any()
    with pytest.raises(InputError, match="rule"):
        mask_to_grid(m, (2, 2), "most")
    with pytest.raises(InputError, match="finer"):
        mask_to_grid(m, (16, 16))


def test_every_single_bit_flip_is_detected():
    grid = mask_to_grid(_two_lungs(), (16, 16))
    data = encode_mask(grid)
    for i in range(8 * len(data)):
        bad = bytearray(data)
        bad[i // 8] ^= 0x80 >> (i % 8)
        with pytest.raises(MedJSCCError):
            decode_mask(bytes(bad), (16, 16))


def test_truncation_extension_and_wrong_shape_are_detected():
    grid = mask_to_grid(_two_lungs(), (16, 16))
    data = encode_mask(grid)
    for bad in (b"", data[:1], data[:-1], data + b"\x00", data + b"\xff"):
        with pytest.raises(MedJSCCError):
            decode_mask(bad, (16, 16))
    with pytest.raises(MedJSCCError):
        decode_mask(data, (8, 32))


def test_random_garbage_mostly_detected(rng):
    grid = mask_to_grid(_two_lungs(), (16, 16))
    n = len(encode_mask(grid))
    missed = 0
    for _ in range(300):
        junk = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        try:
            decode_mask(junk, (16, 16))
            missed += 1
        except MedJSCCError:
            pass
    assert missed <= 6   # CRC-8 plus the header/canonical checks: ~1/256 expected


def test_receiver_fallback_is_all_roi():
    with pytest.warns(RuntimeWarning, match="whole image as ROI"):
        out = decode_mask_or_all_roi(None, (16, 16))
    assert out.all() and out.shape == (16, 16)
    with pytest.warns(RuntimeWarning, match="whole image as ROI"):
        out = decode_mask_or_all_roi(b"\x13\x37\x00", (16, 16))
    assert out.all()
    grid = mask_to_grid(_two_lungs(), (16, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(decode_mask_or_all_roi(encode_mask(grid), (16, 16)), grid)


def test_bad_arguments():
    with pytest.raises(InputError):
        encode_mask(np.zeros(5, bool))
    with pytest.raises(InputError):
        decode_mask(b"\x90\x00", (0, 4))
    with pytest.raises(MedJSCCError):
        decode_mask("not bytes", (4, 4))
    assert sideinfo.default_grid((256, 256)) == (16, 16)
    assert sideinfo.default_grid((250, 100)) == (16, 7)
