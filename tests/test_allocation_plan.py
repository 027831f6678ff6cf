"""One allocation plan (issue #16): training's JSCCModel.allocate and Codec.encode give the same
symbol counts per latent position for the same latents, ROI and budget."""
import numpy as np
import pytest
import torch

from gnuradio.medjscc.codec import allocation, api, sideinfo
from gnuradio.medjscc.codec.models import ModelConfig

SMALL = dict(channels=[8, 8, 16], latent_channels=32, hyper_channels=16, k_max=64,
             levels=[0, 1, 2, 4, 8, 16, 32, 64], linear_path=True, rate_scale=32.0)


def _image(size=128, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size]
    img = 120 + 70 * np.sin(x / 9.0) * np.cos(y / 6.0) * (x > size // 3) + rng.normal(0, 6, (size, size))
    mask = (np.hypot(x - size / 2, y - size / 2) < size / 4)
    return np.clip(img, 0, 255).astype(np.uint8), mask


def _decoder_kmap(codec, enc, shape):
    """The symbol counts the decoder rebuilds from the side info (what it is given at inference)."""
    gh, gw = codec.latent_shape(shape)
    block = sideinfo.rate_block_of(enc.side_info)
    rate_idx, _ = sideinfo.unpack(enc.side_info, codec.cell_shape(shape, block), len(codec.cfg.levels))
    kmap = allocation.symbols_per_position(rate_idx, (gh, gw), block, codec.cfg.levels)
    return allocation.add_remainder(kmap, enc.symbols.size - int(kmap.sum()), codec.cfg.k_max)


@pytest.mark.parametrize("cbr", [1 / 8, 1 / 16, 1 / 32, 1 / 64])
@pytest.mark.parametrize("size", [128, 256])
def test_training_allocates_what_inference_sends(cbr, size):
    codec = api.build_codec(ModelConfig(**SMALL), seed=1)
    img, mask = _image(size)
    enc = codec.encode(img, mask, snr_db=10.0, cbr=cbr)
    x01 = img.astype(np.float32) / 255.0
    with torch.no_grad():
        y, roi_grid, roi_t, _, _ = codec._analyse(x01, mask, 10.0)
        bits, _ = codec.model.rate(y)
        kmap_train = codec.model.allocate(bits, roi_t, torch.tensor([cbr * size * size]),
                                          (1,) + codec.latent_shape(img.shape))[0].numpy()
    np.testing.assert_array_equal(kmap_train, _decoder_kmap(codec, enc, img.shape))
    assert kmap_train.sum() == enc.symbols.size


def test_fixed_length_training_pays_the_side_info_too():
    cfg = ModelConfig(**{**SMALL, "variable_length": False})
    codec = api.build_codec(cfg, seed=2)
    img, mask = _image(128)
    enc = codec.encode(img, mask, snr_db=10.0, cbr=1 / 16)
    kmap = codec.model.allocate(None, torch.from_numpy(codec._roi_grid(mask, img.shape).astype(np.float32))[None, None],
                                torch.tensor([128 * 128 / 16]), (1, 8, 8))[0].numpy()
    assert kmap.sum() == enc.symbols.size < 128 * 128 / 16
