"""Codec tests: tiny random-init models on 64x64 images (fast); shipped weights if present."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from gnuradio.medjscc import snr as snr_conv
from gnuradio.medjscc.codec import (Codec, ModelConfig, apply_channel, build_codec, load_codec,
                                    numpy_channel, save_weights)
from gnuradio.medjscc.codec import allocation, sideinfo
from gnuradio.medjscc.codec.api import CBR_TOLERANCE, FALLBACK_GREY, shipped_models_dir
from gnuradio.medjscc.codec.models import build_model
from gnuradio.medjscc.errors import InputError, MedJSCCError, WeightsError

torch.set_num_threads(1)

ABLATIONS = {
    "medjscc": dict(variable_length=True, use_roi=True, use_cau=True),
    "ntscc": dict(variable_length=True, use_roi=False, use_cau=True),
    "adjscc": dict(variable_length=False, use_roi=False, use_cau=True),
    "deepjscc": dict(variable_length=False, use_roi=False, use_cau=False),
}
TINY = dict(channels=(4, 8, 8), latent_channels=8, hyper_channels=8, k_max=32,
            levels=(0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32))


def tiny_codec(kind="medjscc", **over) -> Codec:
    return build_codec(ModelConfig(name=kind, **{**TINY, **ABLATIONS[kind], **over}), seed=0)


@pytest.fixture(scope="module")
def codecs():
    return {k: tiny_codec(k) for k in ABLATIONS}


def test_image(h=64, w=64, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = 100 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + rng.normal(0, 10, (h, w))
    mask = ((xx - w * 0.3) ** 2 / (w * 0.15) ** 2 + (yy - h / 2) ** 2 / (h * 0.3) ** 2) < 1
    return np.clip(img, 0, 255).astype(np.uint8), mask


test_image.__test__ = False


@pytest.mark.parametrize("kind", list(ABLATIONS))
@pytest.mark.parametrize("shape", [(64, 64), (50, 70), (17, 33)])
def test_shapes_any_size(codecs, kind, shape):
    img, mask = test_image(*shape)
    enc = codecs[kind].encode(img, mask, 10.0, 1 / 8)
    out = codecs[kind].decode(enc.symbols, enc.side_info, enc.shape, 10.0)
    assert out.shape == shape and out.dtype == np.uint8
    assert enc.shape == shape
    assert enc.symbols.dtype == np.complex64 and enc.symbols.ndim == 1


@pytest.mark.parametrize("kind", list(ABLATIONS))
@pytest.mark.parametrize("cbr", [1 / 32, 1 / 16, 1 / 10])
def test_cbr_met_and_unit_power(codecs, kind, cbr):
    img, mask = test_image(64, 64, seed=3)
    enc = codecs[kind].encode(img, mask, 5.0, cbr)
    assert abs(enc.cbr_total - cbr) <= CBR_TOLERANCE * cbr
    n_pix = 64 * 64
    assert enc.cbr_payload == pytest.approx(enc.n_payload_symbols / n_pix)
    assert enc.cbr_total == pytest.approx((enc.n_payload_symbols + enc.side_info_bits / sideinfo.SIDE_INFO_BITS_PER_SYMBOL) / n_pix)
    assert np.mean(np.abs(enc.symbols) ** 2) == pytest.approx(1.0, rel=1e-4)


def test_cbr_met_on_256_images():
    codec = tiny_codec("medjscc")
    img, mask = test_image(256, 256, seed=5)
    for cbr in (1 / 64, 1 / 32, 1 / 16, 1 / 8):
        enc = codec.encode(img, mask, 10.0, cbr)
        assert abs(enc.cbr_total - cbr) <= CBR_TOLERANCE * cbr, (cbr, enc.cbr_total)


def test_variable_length_allocation_follows_roi():
    codec = tiny_codec("medjscc", roi_rate_weight=4.0)
    codec.rate_block_override = 2      # the automatic choice may pick one cell for small images
    img, mask = test_image(128, 128, seed=1)
    enc_roi = codec.encode(img, mask, 10.0, 1 / 16)
    block = sideinfo.rate_block_of(enc_roi.side_info)
    rate_idx, _ = sideinfo.unpack(enc_roi.side_info, codec.cell_shape((128, 128), block), len(codec.cfg.levels))
    kmap = allocation.symbols_per_position(rate_idx, codec.latent_shape((128, 128)), block, codec.cfg.levels)
    grid = codec._roi_grid(mask, (128, 128))
    assert kmap[grid].mean() > kmap[~grid].mean()


def test_side_info_roundtrip_and_size(rng):
    for _ in range(20):
        cells = (int(rng.integers(1, 9)), int(rng.integers(1, 9)))
        idx = rng.integers(0, 16, cells)
        mask_bytes = bytes(rng.integers(0, 256, int(rng.integers(0, 5))).astype(np.uint8))
        block = int(rng.choice([1, 2, 4, 8]))
        data = sideinfo.pack(idx, 16, mask_bytes, block)
        assert sideinfo.rate_block_of(data) == block
        back, mb = sideinfo.unpack(data, cells, 16)
        assert np.array_equal(back, idx) and mb == mask_bytes
        assert sideinfo.size_bits(data) == 8 * len(data)
        # raw coding bound: header + 4 bits per cell, byte padded, + mask
        assert len(data) <= 1 + math.ceil(4 * idx.size / 8) + len(mask_bytes)
    assert sideinfo.unpack(sideinfo.pack(None, 16, None), (4, 4), 16) == (None, None)


def test_rate_block_adapts_to_budget():
    codec = tiny_codec("ntscc")
    shape = (256, 256)
    small = codec.rate_block_for(shape, shape[0] * shape[1] / 64)
    large = codec.rate_block_for(shape, shape[0] * shape[1] / 8)
    assert small >= large >= codec.cfg.rate_block


def test_side_info_compact_for_256(codecs):
    codec = tiny_codec("medjscc")
    img, mask = test_image(256, 256, seed=2)
    enc = codec.encode(img, mask, 10.0, 1 / 16)
    assert enc.side_info_bits == 8 * len(enc.side_info)
    # 64 rate cells + ROI grid: far below the naive 256 positions x 4 bits
    assert enc.side_info_bits < 400
    assert codecs["deepjscc"].encode(img, None, 10.0, 1 / 16).side_info_bits == 8


def test_corrupted_side_info_raises_or_falls_back(codecs):
    codec = codecs["medjscc"]
    img, mask = test_image()
    enc = codec.encode(img, mask, 10.0, 1 / 8)
    with pytest.raises(MedJSCCError):
        sideinfo.unpack(b"\xff" + enc.side_info[1:], codec.cell_shape((64, 64)), len(codec.cfg.levels))
    # garbled rate indices inside a valid header: the image is counted as lost (warning + grey)
    broken = enc.side_info[:1] + bytes(b ^ 0x5A for b in enc.side_info[1:])
    with pytest.warns(RuntimeWarning, match="side info unusable"):
        out = codec.decode(enc.symbols, broken, (64, 64), 10.0)
    assert (out == FALLBACK_GREY).all()
    # a well-formed rate map that describes more symbols than arrived is reported as such
    fewer = codec.encode(img, mask, 10.0, 1 / 16)
    assert fewer.symbols.size < enc.symbols.size
    with pytest.raises(InputError, match="side info describes"):
        codec.decode(fewer.symbols, enc.side_info, (64, 64), 10.0)
    with pytest.warns(RuntimeWarning):
        out = codec.decode(enc.symbols, b"\xff" + enc.side_info[1:], (64, 64), 10.0)
    assert (out == FALLBACK_GREY).all()


def test_missing_side_info_fallback(codecs):
    img, mask = test_image()
    enc = codecs["medjscc"].encode(img, mask, 10.0, 1 / 8)
    with pytest.warns(RuntimeWarning, match="lost"):
        out = codecs["medjscc"].decode(enc.symbols, None, (64, 64), 10.0)
    assert out.shape == (64, 64) and (out == FALLBACK_GREY).all()
    # fixed-length models do not need side info
    enc = codecs["adjscc"].encode(img, None, 10.0, 1 / 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = codecs["adjscc"].decode(enc.symbols, None, (64, 64), 10.0)
    b = codecs["adjscc"].decode(enc.symbols, enc.side_info, (64, 64), 10.0)
    assert np.array_equal(a, b)


def test_erasures(codecs, rng):
    codec = codecs["ntscc"]
    img, mask = test_image()
    enc = codec.encode(img, mask, 10.0, 1 / 8)
    erased = np.zeros(enc.symbols.size, dtype=bool)
    erased[: enc.symbols.size // 2] = True
    a = codec.decode(enc.symbols, enc.side_info, enc.shape, 10.0, erased=erased)
    zeroed = np.where(erased, 0, enc.symbols).astype(np.complex64)
    b = codec.decode(zeroed, enc.side_info, enc.shape, 10.0)
    assert np.array_equal(a, b)
    full = codec.decode(enc.symbols, enc.side_info, enc.shape, 10.0)
    assert not np.array_equal(a, full)
    rx, lost = numpy_channel(enc.symbols, "erasure", 30.0, rng, erasure_prob=0.5, frame_len=16, return_erased=True)
    assert lost.any() and (rx[lost] == 0).all() and (rx[~lost] != 0).all()
    with pytest.raises(InputError):
        codec.decode(enc.symbols, enc.side_info, enc.shape, 10.0, erased=erased[:-1])


def test_cau_changes_output_with_snr(codecs):
    img, mask = test_image()
    for kind, expect_change in (("adjscc", True), ("deepjscc", False)):
        codec = codecs[kind]
        # make the CAU non-trivial (random init is close to identity scaling)
        torch.manual_seed(1)
        with torch.no_grad():
            for name, p in codec.model.named_parameters():
                if "cau" in name:
                    p.normal_(0, 0.5)
        enc = codec.encode(img, mask, 10.0, 1 / 8)
        lo = codec.decode(enc.symbols, enc.side_info, enc.shape, 0.0)
        hi = codec.decode(enc.symbols, enc.side_info, enc.shape, 20.0)
        assert (not np.array_equal(lo, hi)) == expect_change, kind
        e0 = codec.encode(img, mask, 0.0, 1 / 8).symbols
        e20 = codec.encode(img, mask, 20.0, 1 / 8).symbols
        assert (not np.allclose(e0, e20)) == expect_change, kind


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 25.0])
def test_numpy_channel_awgn_statistics(snr_db):
    rng = np.random.default_rng(7)
    x = np.ones(200_000, dtype=np.complex64)
    noise = numpy_channel(x, "awgn", snr_db, rng) - x
    n0 = snr_conv.noise_variance(snr_db)
    assert np.mean(np.abs(noise) ** 2) == pytest.approx(n0, rel=0.02)
    assert np.var(noise.real) == pytest.approx(n0 / 2, rel=0.03)
    assert np.var(noise.imag) == pytest.approx(n0 / 2, rel=0.03)


def test_torch_channel_statistics_and_gradient():
    gen = torch.Generator().manual_seed(3)
    x = torch.ones(4, 50_000, dtype=torch.complex64, requires_grad=False)
    snr = torch.tensor([-5.0, 0.0, 10.0, 20.0])
    y = apply_channel(x, "awgn", snr, generator=gen)
    p = ((y - x).abs() ** 2).mean(dim=1)
    expected = torch.tensor([snr_conv.noise_variance(float(s)) for s in snr])
    assert torch.allclose(p, expected, rtol=0.03)
    # real-pair input and gradient flow
    xr = torch.randn(2, 100, 2, requires_grad=True)
    yr = apply_channel(xr, "rayleigh", 10.0, block_len=10, generator=gen)
    assert yr.shape == xr.shape
    yr.sum().backward()
    assert xr.grad is not None and torch.isfinite(xr.grad).all()


def test_rayleigh_equalisation():
    rng = np.random.default_rng(11)
    x = snr_conv.normalize_power(rng.standard_normal(40_000) + 1j * rng.standard_normal(40_000)).astype(np.complex64)
    for eq in ("mmse", "zf"):
        y = numpy_channel(x, "rayleigh", 60.0, np.random.default_rng(1), block_len=100, equalizer=eq)
        assert np.mean(np.abs(y - x) ** 2) < 1e-3
    # noisy CSI leaves a residual error even at high SNR
    y = numpy_channel(x, "rayleigh", 60.0, np.random.default_rng(1), block_len=100, csi="noisy", csi_error_var=0.05)
    assert np.mean(np.abs(y - x) ** 2) > 1e-2
    # the fading gain has unit average power: with g = |h|^2 ~ Exp(1) the MMSE output keeps
    # E[g / (g + N0)] = 1 - N0 e^N0 E1(N0) of the symbol (0.798 at 10 dB; a gain of power 2 gives 0.870)
    from scipy.special import exp1

    y = numpy_channel(x, "rayleigh", 10.0, np.random.default_rng(2), block_len=1, equalizer="mmse")
    assert np.isfinite(y).all()
    n0 = snr_conv.noise_variance(10.0)
    kept = np.mean(y * np.conj(x)).real / np.mean(np.abs(x) ** 2)
    assert kept == pytest.approx(1 - n0 * math.exp(n0) * exp1(n0), abs=0.01)


def test_allocation_never_exceeds_target(rng):
    sizes = allocation.block_sizes((16, 16), 2)
    for _ in range(30):
        score = rng.exponential(1.0, sizes.shape)
        target = int(rng.integers(100, 64 * 256))
        idx = allocation.allocate_variable(score, sizes, target)
        total = (np.asarray(allocation.DEFAULT_LEVELS)[idx] * sizes).sum()
        assert total <= target and total >= 0.98 * target
    k = allocation.allocate_fixed(1001, (16, 16), 64)
    assert k.sum() == 1001 and k.max() - k.min() <= 1


def test_all_shipped_configs_build():
    cfg_dir = shipped_models_dir() / "configs"
    names = sorted(p.stem for p in cfg_dir.glob("*.yaml"))
    assert {"medjscc", "ntscc", "adjscc", "deepjscc"} <= set(names)
    for name in names:
        codec = build_codec(name)
        assert isinstance(codec, Codec)
    assert build_codec("deepjscc").cfg.use_cau is False
    assert build_codec("ntscc").cfg.variable_length and not build_codec("ntscc").cfg.use_roi


def test_bad_inputs(codecs):
    codec = codecs["medjscc"]
    img, mask = test_image()
    with pytest.raises(InputError, match="size"):
        codec.encode(np.zeros((8, 8), np.uint8), None, 10.0, 1 / 16)
    with pytest.raises(InputError, match="colour"):
        codec.encode(np.zeros((64, 64, 3), np.uint8), None, 10.0, 1 / 16)
    bad = img.astype(np.float32)
    bad[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        codec.encode(bad, None, 10.0, 1 / 16)
    with pytest.raises(InputError, match="mask shape"):
        codec.encode(img, mask[:32], 10.0, 1 / 16)
    with pytest.raises(MedJSCCError, match="unreachable"):
        codec.encode(img, mask, 10.0, 1 / 4096)
    with pytest.raises(MedJSCCError, match="unreachable"):
        codec.encode(img, mask, 10.0, 4.0)
    with pytest.raises(InputError):
        codec.encode(img, mask, 10.0, -1)
    enc = codec.encode(img, mask, 10.0, 1 / 8)
    with pytest.raises(InputError, match="symbols"):
        codec.decode(enc.symbols[:1], enc.side_info, enc.shape, 10.0)
    with pytest.raises(InputError):
        codec.decode(enc.symbols.reshape(1, -1), enc.side_info, enc.shape, 10.0)


def test_out_of_range_snr_clamps_and_warns(codecs):
    codec = codecs["adjscc"]
    img, mask = test_image()
    with pytest.warns(RuntimeWarning, match="clamped"):
        enc_hi = codec.encode(img, mask, 40.0, 1 / 8)
    enc_25 = codec.encode(img, mask, 25.0, 1 / 8)
    assert np.allclose(enc_hi.symbols, enc_25.symbols) and enc_hi.snr_db == 25.0
    with pytest.warns(RuntimeWarning, match="clamped"):
        lo = codec.decode(enc_25.symbols, enc_25.side_info, enc_25.shape, -20.0)
    assert np.array_equal(lo, codec.decode(enc_25.symbols, enc_25.side_info, enc_25.shape, -5.0))


def _write_tiny_weights(tmp_path, kind="ntscc"):
    model = build_model(ModelConfig(name=kind, **{**TINY, **ABLATIONS[kind]}))
    return save_weights(model, tmp_path / f"{kind}.pt", {"note": "test"})


def test_weights_roundtrip_checksum_and_tamper(tmp_path):
    path = _write_tiny_weights(tmp_path)
    codec = load_codec(str(path))
    img, mask = test_image()
    enc = codec.encode(img, mask, 10.0, 1 / 8)
    assert codec.decode(enc.symbols, enc.side_info, enc.shape, 10.0).shape == (64, 64)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum"):
        load_codec(str(path))
    with pytest.raises(WeightsError, match="not found"):
        load_codec(str(tmp_path / "absent.pt"))
    other = _write_tiny_weights(tmp_path / "b")
    (other.parent / (other.name + ".sha256")).unlink()
    with pytest.raises(WeightsError, match="checksum file missing"):
        load_codec(str(other))


def test_wrong_architecture_checkpoint(tmp_path):
    path = _write_tiny_weights(tmp_path, "ntscc")
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["latent_channels"] = 12       # config no longer matches the tensors
    torch.save(ckpt, path)
    from gnuradio.medjscc.checksums import file_sha256 as _sha256

    (tmp_path / "ntscc.pt.sha256").write_text(f"{_sha256(path)}  ntscc.pt\n")
    with pytest.raises(WeightsError, match="does not match the architecture"):
        load_codec(str(path))
    torch.save({"state_dict": {}}, path)
    (tmp_path / "ntscc.pt.sha256").write_text(f"{_sha256(path)}  ntscc.pt\n")
    with pytest.raises(WeightsError, match="not a gr-medjscc codec checkpoint"):
        load_codec(str(path))


@pytest.mark.parametrize("name", ["medjscc", "medjscc_csi", "medjscc_radio", "medjscc_task", "ntscc", "adjscc", "deepjscc"])
def test_shipped_weights_load(name):
    path = shipped_models_dir() / f"{name}.pt"
    if not path.exists():
        pytest.skip(f"{path} not shipped")
    assert path.stat().st_size <= 20 * 1024 * 1024
    codec = load_codec(name)
    img, mask = test_image(128, 128)
    enc = codec.encode(img, mask, 10.0, 1 / 16)
    out = codec.decode(enc.symbols, enc.side_info, enc.shape, 10.0)
    assert out.shape == (128, 128)
    assert abs(enc.cbr_total - 1 / 16) <= CBR_TOLERANCE / 16


@pytest.mark.parametrize("kind", list(ABLATIONS))
def test_training_step_all_ablations(kind):
    """One forward/backward pass of the training path for every ablation (fixed and variable)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=kind, **{**TINY, **ABLATIONS[kind]}))
    x = torch.rand(2, 1, 64, 64)
    roi = (torch.rand(2, 1, 4, 4) > 0.5).float() if model.cfg.use_roi else None
    target = torch.tensor([128, 300])
    x_hat, bpp, n_sym = model(x, roi, torch.tensor([0.0, 20.0]), target,
                              lambda z, s: apply_channel(z, "awgn", s))
    assert x_hat.shape == x.shape
    # the budget includes the side info (one allocation plan with inference): the payload is
    # the target less the side info's symbols, exactly (the remainder fills the level table's gaps)
    from gnuradio.medjscc.codec import plan, sideinfo

    for i in range(2):
        grid = None if roi is None else roi[i, 0].numpy() > 0.5
        side = plan.side_info(model.cfg, None, grid)   # a lower bound: no rate map yet
        assert n_sym[i] <= target[i] - sideinfo.size_bits(side) / sideinfo.SIDE_INFO_BITS_PER_SYMBOL
        assert n_sym[i] >= target[i] - 16 * 8   # a 4x4-latent image's side info is a few bytes
    loss = ((x_hat - x) ** 2).mean() + 0.01 * bpp.mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_train_resume_and_export(tmp_path):
    """Two training steps, then resume to three; the export loads through the checked path."""
    import yaml

    from gnuradio.medjscc.codec.train import train

    cfg = {"name": "tiny", "model": {**{k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items()},
                                     **ABLATIONS["medjscc"]},
           "train": {"steps": 2, "batch_size": 2, "crop": 64, "val_every": 2, "val_images": 2,
                     "checkpoint_every": 1, "seed": 3}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = train(path, runs_dir=tmp_path / "runs", out_path=tmp_path / "tiny.pt", synthetic=True, progress=False)
    ck = torch.load(tmp_path / "runs" / "tiny" / "last.pt", weights_only=True)
    assert ck["step"] == 2
    train(path, resume=True, steps=3, runs_dir=tmp_path / "runs", out_path=out, synthetic=True, progress=False)
    last = tmp_path / "runs" / "tiny" / "last.pt"
    assert torch.load(last, weights_only=True)["step"] == 3
    codec = load_codec(str(out))
    assert codec.meta["steps"] == 3 and codec.cfg.use_roi
    # the resume checkpoint carries a SHA-256 side file; a damaged or unvouched one is refused
    from gnuradio.medjscc.checksums import file_sha256

    side = last.with_name("last.pt.sha256")
    assert side.read_text().split()[0] == file_sha256(last)
    data = bytearray(last.read_bytes())
    data[len(data) // 2] ^= 0xFF
    last.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum mismatch.*last.pt"):
        train(path, resume=True, steps=4, runs_dir=tmp_path / "runs", out_path=out, synthetic=True,
              progress=False)
    side.unlink()
    with pytest.raises(WeightsError, match="checksum file missing"):
        train(path, resume=True, steps=4, runs_dir=tmp_path / "runs", out_path=out, synthetic=True,
              progress=False)


def test_qa_shared_codec_never_replaces_damaged_weights(tmp_path, monkeypatch):
    """The QA tests' shared codec falls back to random weights only when the file is absent: a
    checksum mismatch is an error, not a silent random-init codec."""
    import shutil

    import qa_helpers

    src = shipped_models_dir() / "medjscc.pt"
    if not src.is_file():
        pytest.skip("medjscc weights not shipped")
    shutil.copy(src, tmp_path / "medjscc.pt")
    (tmp_path / "medjscc.pt.sha256").write_text("0" * 64 + "  medjscc.pt\n")
    monkeypatch.setenv("MEDJSCC_MODELS_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match="checksum mismatch"):
        qa_helpers._load_shared_codec.__wrapped__()


def test_training_erasures_zero_the_drawn_share_and_leave_plain_runs_alone():
    """train.erasure_fraction: that share of the samples lose erasure_share of their symbols
    (zeros at random positions); without it no random number is drawn, so configs that do not use
    it train exactly as before."""
    from gnuradio.medjscc.codec.train import TrainConfig, erase_symbols, erasure_shares

    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert not erasure_shares(rng, 8, TrainConfig()).any()
    assert rng.bit_generator.state == state
    cfg = TrainConfig.from_dict({"erasure_fraction": 1.0, "erasure_share": [0.3, 0.3]})
    share = erasure_shares(rng, 4, cfg)
    assert np.allclose(share, 0.3)
    z = torch.ones(4, 20000, dtype=torch.complex64)
    out = erase_symbols(z, np.array([0.0, 0.1, 0.3, 0.5]))
    lost = (out == 0).float().mean(dim=1).numpy()
    assert lost[0] == 0 and np.allclose(lost[1:], [0.1, 0.3, 0.5], atol=0.02)
    assert torch.equal(out[out != 0], z[out != 0])


def test_train_csi_mix_reaches_the_channel_and_bad_mixes_are_refused():
    import torch

    from gnuradio.medjscc.codec.channel import csi_link_channel
    from gnuradio.medjscc.codec.train import TrainConfig

    cfg = TrainConfig.from_dict({"channel": "csi_link", "csi_mix": [["multipath", 1.0], ["awgn", 0]]})
    assert cfg.csi_mix == (("multipath", 1.0), ("awgn", 0.0))
    z = torch.ones(64, 512, dtype=torch.complex64)
    _, inv_snr, _ = csi_link_channel(z, 20.0, erasure_fraction=0.0, mix=cfg.csi_mix)
    assert bool((inv_snr.std(dim=1) > 0).all())          # every sample faded: no AWGN row
    _, inv_snr, _ = csi_link_channel(z, 20.0, erasure_fraction=0.0, mix=(("awgn", 1.0),))
    assert bool((inv_snr.std(dim=1) == 0).all())
    for bad in ([["fog", 1.0]], [["awgn", -1.0]], [["awgn", 0.0]], "awgn"):
        with pytest.raises(MedJSCCError, match="csi_mix"):
            TrainConfig.from_dict({"csi_mix": bad})
