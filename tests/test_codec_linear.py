"""Linear-path codec models: patch KLT and full-frame wavelet, SoftCast-style start, power code in
the side info."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from gnuradio.medjscc.codec import Codec, ModelConfig, apply_channel, sideinfo
from gnuradio.medjscc.codec.api import FALLBACK_GREY
from gnuradio.medjscc.codec.layers import (FullFrameWavelet, PatchKLT, coarse_dwt, coarse_unit_labels,
                                           inverse_coarse_dwt, inverse_wavelet_trees, wavelet_trees)
from gnuradio.medjscc.codec.models import build_model
from gnuradio.medjscc.codec.train import linear_init_images
from gnuradio.medjscc.errors import MedJSCCError

torch.set_num_threads(1)

SMALL = dict(channels=(4, 8, 8), latent_channels=64, hyper_channels=8, k_max=32,
             levels=(0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32), linear_path=True, rate_scale=32.0)
ABLATIONS = {
    "medjscc": dict(variable_length=True, use_roi=True, use_cau=True),
    "ntscc": dict(variable_length=True, use_roi=False, use_cau=True),
    "adjscc": dict(variable_length=False, use_roi=False, use_cau=True),
    "deepjscc": dict(variable_length=False, use_roi=False, use_cau=False),
}


def smooth_images(n=6, size=128, seed=0):
    """Smooth radiograph-like images (low-pass noise + a bright body): KLT-friendly."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        f = np.fft.fft2(rng.normal(size=(size, size)))
        k = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size)))
        field = np.real(np.fft.ifft2(f * np.exp(-(k / 0.03) ** 2)))
        field = field / (np.abs(field).max() + 1e-9)
        body = np.exp(-(((xx - 0.5) / 0.4) ** 4 + ((yy - 0.5) / 0.45) ** 4))
        img = 40 + 150 * body + 40 * field
        mask = (((xx - 0.35) / 0.12) ** 2 + ((yy - 0.5) / 0.3) ** 2) < 1
        out.append({"image": np.clip(img, 0, 255).astype(np.uint8), "mask": mask})
    return out


def psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


def linear_codec(kind="medjscc", pairs=None, transform="patch_klt") -> Codec:
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=kind, **{**SMALL, **ABLATIONS[kind]}, linear_transform=transform))
    model.init_linear_path(linear_init_images(pairs or smooth_images()))
    return Codec(model)


def test_patch_klt_is_orthonormal_and_exact_at_full_rank():
    pairs = smooth_images(4, 64)
    patches = torch.cat([torch.from_numpy(im).reshape(4, 16, 4, 16).permute(0, 2, 1, 3).reshape(-1, 256)
                         for im in linear_init_images(pairs)])
    assert patches.shape == (4 * 16, 256)
    klt = PatchKLT(256)
    var = klt.init_from_patches(patches)
    assert (var[:-1] >= var[1:]).all()                    # sorted by variance
    basis = klt.analysis_conv.weight.reshape(256, 256).double()
    assert torch.allclose(basis @ basis.T, torch.eye(256, dtype=torch.double), atol=1e-4)
    x = torch.from_numpy(pairs[0]["image"].astype(np.float32) / 255)[None, None]
    assert torch.allclose(klt.synthesis(klt.analysis(x)), x, atol=1e-4)
    # truncation keeps most energy of smooth images
    klt16 = PatchKLT(16)
    klt16.init_from_patches(patches)
    err = (klt16.synthesis(klt16.analysis(x)) - x).pow(2).mean()
    assert 10 * torch.log10(1 / err) > 30


def test_power_code_roundtrip_and_precision():
    for p in (1e-6, 0.01, 0.5, 1.0, 3.7, 1e4):
        back = sideinfo.power_from_code(sideinfo.power_code(p))
        assert abs(np.log2(back / p)) <= 0.5 / sideinfo.POWER_STEPS_PER_OCTAVE + 1e-12
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(MedJSCCError):
            sideinfo.power_code(bad)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 16, (4, 4))
    data = sideinfo.pack(idx, 16, b"\x12\x34", 2, power_code=40000)
    assert sideinfo.power_code_of(data) == 40000
    back, mask_bytes = sideinfo.unpack(data, (4, 4), 16)
    assert np.array_equal(back, idx) and mask_bytes == b"\x12\x34"
    assert sideinfo.power_code_of(sideinfo.pack(idx, 16, None, 2)) is None
    with pytest.raises(MedJSCCError):
        sideinfo.unpack(data[:2], (4, 4), 16)               # truncated inside the power code


def test_wavelet_trees_and_coarse_wavelet_invert_exactly_and_keep_energy():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 128, 96, dtype=torch.float64)
    t = wavelet_trees(x)
    assert t.shape == (2, 256, 8, 6)
    assert torch.allclose(inverse_wavelet_trees(t), x, atol=1e-12)
    c, level = coarse_dwt(t[:, :1])
    assert int(level.max()) == 1 and int(level[0, 0]) == 1   # 8 x 6: one level (6 / 2 is odd)
    assert torch.allclose(inverse_coarse_dwt(c), t[:, :1], atol=1e-12)
    # CDF 9/7 scaled near-orthonormal: white noise keeps its energy to a few per cent
    n = torch.randn(1, 1, 256, 256, dtype=torch.float64)
    assert float((wavelet_trees(n) ** 2).sum() / (n ** 2).sum()) == pytest.approx(1.0, abs=0.06)
    # a constant image: all energy in the final LL, nothing in any detail
    const = torch.full((1, 1, 256, 256), 3.0, dtype=torch.float64)
    c, _ = coarse_dwt(wavelet_trees(const)[:, :1])
    flat = torch.cat([c.flatten(), wavelet_trees(const)[:, 1:].flatten()])
    assert float(flat[0]) == pytest.approx(3.0 * 256) and float(flat[1:].abs().max()) < 1e-9
    labels = coarse_unit_labels(16, 16)
    assert int(labels[0, 0]) == 24 and int(labels[0, 1]) == 0 and int(labels[8, 8]) == 11
    deep = coarse_unit_labels(512, 512)                      # 9 levels: the 9th shares the 8th's labels
    assert int(deep[0, 0]) == 24 and int(deep.max()) == 24 and int(deep[0, 256]) == 21


def test_full_frame_wavelet_is_exact_at_full_rank_and_decorrelates_cells():
    pairs = smooth_images(4, 128)
    ff = FullFrameWavelet(256).double()
    var = ff.init_from_images(linear_init_images(pairs))
    assert (var[1:-1] >= var[2:]).all()                      # details sorted by variance
    x = torch.from_numpy(pairs[0]["image"].astype(np.float64) / 255)[None, None]
    assert torch.allclose(ff.synthesis(ff.analysis(x)), x, atol=1e-9)
    for h, w in ((80, 48), (256, 512)):   # an odd cell grid (no cross-cell step), more levels than trained
        other = torch.rand(1, 1, h, w, dtype=torch.float64)
        with torch.no_grad():   # the basis is stored in float32: exact to ~1e-7
            assert torch.allclose(ff.synthesis(ff.analysis(other)), other, atol=1e-6)
    # the coarse wavelet moves the cells' shared structure out of most cells' channel 0
    with torch.no_grad():
        y = ff.analysis(x)[0, 0] / ff._gain(8, 8, "cpu")
    trees = wavelet_trees(x)[0, 0] - ff.mean[0, 0]
    assert float((y ** 2).sum()) == pytest.approx(float((trees ** 2).sum()), rel=0.1)
    assert float((y ** 2).max() / (y ** 2).sum()) > 2 * float((trees ** 2).max() / (trees ** 2).sum())


@pytest.mark.parametrize("transform", ["patch_klt", "full_frame"])
@pytest.mark.parametrize("kind", list(ABLATIONS))
def test_initial_linear_model_is_a_working_analog_code(kind, transform):
    """Straight after the linear path's initialisation (no training) the model reconstructs smooth
    images well at high SNR; a nonlinear-only model at random init does not."""
    pairs = smooth_images()
    codec = linear_codec(kind, pairs, transform)
    test = smooth_images(1, 128, seed=9)[0]
    enc = codec.encode(test["image"], test["mask"], 25.0, 1 / 8)
    assert np.mean(np.abs(enc.symbols) ** 2) == pytest.approx(1.0, rel=2e-3)
    assert sideinfo.power_code_of(enc.side_info) is not None
    rx = apply_channel(torch.from_numpy(enc.symbols)[None], "awgn", torch.tensor([25.0]),
                       generator=torch.Generator().manual_seed(0))[0].numpy()
    out = codec.decode(rx, enc.side_info, enc.shape, 25.0)
    assert psnr(out, test["image"]) > 30.0
    plain = Codec(build_model(ModelConfig(name=kind, **{**SMALL, **ABLATIONS[kind], "linear_path": False})))
    enc0 = plain.encode(test["image"], test["mask"], 25.0, 1 / 8)
    assert psnr(plain.decode(enc0.symbols, enc0.side_info, enc0.shape, 25.0), test["image"]) < 25.0


def test_decoder_uses_the_power_code():
    codec = linear_codec("ntscc")
    test = smooth_images(1, 128, seed=4)[0]
    enc = codec.encode(test["image"], None, 25.0, 1 / 8)
    good = psnr(codec.decode(enc.symbols, enc.side_info, enc.shape, 25.0), test["image"])
    code = sideinfo.power_code_of(enc.side_info)
    wrong = bytearray(enc.side_info)
    wrong[1:3] = (code + 2 * sideinfo.POWER_STEPS_PER_OCTAVE).to_bytes(2, "big")   # 4x the power
    bad = psnr(codec.decode(enc.symbols, bytes(wrong), enc.shape, 25.0), test["image"])
    assert good > bad + 3.0


def test_side_info_without_power_code_counts_image_as_lost():
    for kind in ("ntscc", "adjscc"):
        codec = linear_codec(kind)
        test = smooth_images(1, 64, seed=5)[0]
        enc = codec.encode(test["image"], None, 10.0, 1 / 8)
        version1 = bytes([(sideinfo.VERSION << 5) | (enc.side_info[0] & 0x1F)]) + enc.side_info[3:]
        for side in (None, version1):
            with pytest.warns(RuntimeWarning, match="lost"):
                out = codec.decode(enc.symbols, side, enc.shape, 10.0)
            assert (out == FALLBACK_GREY).all()


@pytest.mark.parametrize("transform", ["patch_klt", "full_frame"])
@pytest.mark.parametrize("kind", list(ABLATIONS))
def test_linear_training_step_has_finite_gradients(kind, transform):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=kind, **{**SMALL, **ABLATIONS[kind]}, linear_transform=transform))
    model.init_linear_path(linear_init_images(smooth_images(2, 64)))
    x = torch.rand(2, 1, 64, 64)
    roi = (torch.rand(2, 1, 4, 4) > 0.5).float() if model.cfg.use_roi else None
    x_hat, bpp, _ = model(x, roi, torch.tensor([0.0, 20.0]), torch.tensor([128, 300]),
                          lambda z, s: apply_channel(z, "awgn", s))
    loss = ((x_hat - x) ** 2).mean() + 0.01 * bpp.mean()
    loss.backward()
    assert model.klt.analysis_conv.weight.grad is not None
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)


def test_bad_linear_config():
    with pytest.raises(MedJSCCError, match="latent_channels"):
        ModelConfig.from_dict({**SMALL, "latent_channels": 300, "channels": [4, 8, 8]})
    with pytest.raises(MedJSCCError, match="rate_scale"):
        ModelConfig.from_dict({**SMALL, "rate_scale": 0.0})
    with pytest.raises(MedJSCCError, match="linear_transform"):
        ModelConfig.from_dict({**SMALL, "linear_transform": "dct"})


def train_tiny(tmp_path, name, kind, model_extra=None, train_extra=None):
    """One synthetic training step of a small linear-path model; returns the loaded codec."""
    import yaml

    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.codec.train import train

    model_cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in SMALL.items()}
    cfg = {"name": name, "model": {**model_cfg, **ABLATIONS[kind], **(model_extra or {})},
           "train": {"steps": 1, "batch_size": 2, "crop": 64, "val_every": 1, "val_images": 2,
                     "checkpoint_every": 1, "seed": 3, **(train_extra or {})}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = train(path, runs_dir=tmp_path / f"runs_{name}", out_path=tmp_path / f"{name}.pt", synthetic=True,
                    progress=False)
    return load_codec(str(out))


def test_train_initialises_the_klt(tmp_path):
    codec = train_tiny(tmp_path, "tinylin", "ntscc")
    var = codec.model.klt.variances
    assert (var[:-1] >= var[1:]).all() and float(var[0]) > 10 * float(var[-1])


def test_train_initialises_the_full_frame_transform_and_reloads_it(tmp_path):
    codec = train_tiny(tmp_path, "tinyff", "medjscc", {"linear_transform": "full_frame"})
    klt = codec.model.klt
    assert isinstance(klt, FullFrameWavelet) and codec.cfg.linear_transform == "full_frame"
    var = klt.variances
    assert (var[1:-1] >= var[2:]).all() and float(var[1]) > 10 * float(var[-1])
    # the subband variances were measured, not left at their placeholder 1.0
    assert float(klt.coarse_var[24]) > 10 * float(klt.coarse_var[0])
    img = smooth_images(1, 64, seed=2)[0]
    enc = codec.encode(img["image"], img["mask"], 20.0, 1 / 16)
    assert codec.decode(enc.symbols, enc.side_info, enc.shape, 20.0).shape == (64, 64)


def test_frozen_transform_keeps_its_initial_basis(tmp_path):
    def basis_error(codec):
        w = codec.model.klt.analysis_conv.weight.detach().flatten(1).double()
        return float((w @ w.T - torch.eye(w.shape[0], dtype=torch.double)).abs().max())

    fast = {"lr": 0.05, "steps": 3}
    frozen = train_tiny(tmp_path, "tinyfrozen", "ntscc", {"linear_transform": "full_frame"}, {**fast, "frozen": ["klt"]})
    free = train_tiny(tmp_path, "tinyfree", "ntscc", {"linear_transform": "full_frame"}, fast)
    assert basis_error(frozen) < 1e-4 < basis_error(free)    # the PCA basis is orthonormal until trained
    with pytest.raises(MedJSCCError, match="train.frozen"):
        train_tiny(tmp_path, "badfrozen", "ntscc", None, {"frozen": ["nothing_called_this"]})


def test_training_roi_weight_is_separate_from_the_shipped_one(tmp_path):
    codec = train_tiny(tmp_path, "tinyroi", "medjscc", {"roi_rate_weight": 2.0}, {"roi_rate_weight": 5.0})
    assert codec.cfg.roi_rate_weight == 2.0 and codec.meta["train"]["roi_rate_weight"] == 5.0
    with pytest.raises(MedJSCCError, match="roi_rate_weight"):
        train_tiny(tmp_path, "badroi", "medjscc", None, {"roi_rate_weight": 0.0})


def test_log_mse_loss_balances_samples_and_keeps_the_mse_scale():
    from gnuradio.medjscc.codec.train import distortion_loss

    mse = torch.tensor([1e-2, 1e-4], requires_grad=True)
    plain = distortion_loss(mse, "mse")
    plain.backward()
    assert torch.allclose(mse.grad, torch.tensor([0.5, 0.5]))
    mse.grad = None
    bal = distortion_loss(mse, "log_mse")
    assert float(bal.detach()) == pytest.approx(float(plain.detach()))   # same value as the plain mean
    bal.backward()
    # gradient of log(MSE_i) scaled by the batch mean: the small-MSE sample weighs 100x more
    assert float(mse.grad[1] / mse.grad[0]) == pytest.approx(100.0, rel=1e-4)
    assert float(mse.grad[0]) == pytest.approx(float(plain.detach()) / 2 / 1e-2, rel=1e-4)
    mse.grad = None
    distortion_loss(mse, "sqrt_mse").backward()
    assert float(mse.grad[1] / mse.grad[0]) == pytest.approx(10.0, rel=1e-4)
    with pytest.raises(MedJSCCError, match="unknown loss"):
        distortion_loss(mse, "l1")


def test_train_config_rejects_an_unknown_loss(tmp_path):
    codec = train_tiny(tmp_path, "tinylog", "adjscc", None, {"loss": "log_mse"})
    assert codec.meta["train"]["loss"] == "log_mse"
    with pytest.raises(MedJSCCError, match="train.loss"):
        train_tiny(tmp_path, "badloss", "adjscc", None, {"loss": "l2"})


def test_energy_allocation_sends_the_strongest_coefficients():
    y = torch.zeros(1, 8, 2, 2)
    y[0, :, 0, 0] = 10.0           # position (0,0): all 4 pairs strong
    y[0, 0:2, 1, 1] = 5.0          # position (1,1): one strong pair
    y[0, 2, 0, 1] = 0.1            # position (0,1): weak
    counts = build_model(ModelConfig(name="x", **{**SMALL, **ABLATIONS["ntscc"]})).strongest_pair_counts(y, 5)
    assert counts.tolist() == [[4.0, 0.0], [0.0, 1.0]]
    codec = linear_codec("ntscc")
    img = smooth_images(1, 128, seed=5)[0]["image"]
    codec.allocation_score = "energy"
    enc = codec.encode(img, None, 10.0, 1 / 16)
    assert abs(enc.cbr_total - 1 / 16) <= 0.02 / 16
    assert codec.decode(enc.symbols, enc.side_info, enc.shape, 10.0).shape == img.shape
    codec.allocation_score = "bogus"
    with pytest.raises(MedJSCCError, match="allocation_score"):
        codec.encode(img, None, 10.0, 1 / 16)
