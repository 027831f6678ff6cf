"""SNR convention, metrics and shared config: checked against hand-computed values."""
import math

import numpy as np
import pytest

from gnuradio.medjscc import config, metrics, snr
from gnuradio.medjscc.errors import MedJSCCError


def test_noise_variance_matches_es_n0_convention():
    assert snr.noise_variance(0) == pytest.approx(1.0)
    assert snr.noise_variance(10) == pytest.approx(0.1)
    assert snr.noise_variance(-3) == pytest.approx(10 ** 0.3)


def test_complex_awgn_splits_variance_over_real_and_imag(rng):
    n = snr.complex_awgn(400_000, 6.0, rng)
    n0 = snr.noise_variance(6.0)
    assert np.mean(np.abs(n) ** 2) == pytest.approx(n0, rel=0.01)
    assert np.var(n.real) == pytest.approx(n0 / 2, rel=0.01)
    assert np.var(n.imag) == pytest.approx(n0 / 2, rel=0.01)
    # measured SNR of unit-power QPSK through it
    x = (rng.choice([-1, 1], 400_000) + 1j * rng.choice([-1, 1], 400_000)) / math.sqrt(2)
    measured = snr.snr_db_from_powers(np.mean(np.abs(x) ** 2), np.mean(np.abs(n) ** 2))
    assert measured == pytest.approx(6.0, abs=0.05)


def test_normalize_power_and_cbr():
    x = np.array([3 + 4j, 0, 0, 0])
    y = snr.normalize_power(x)
    assert np.mean(np.abs(y) ** 2) == pytest.approx(1.0)
    assert snr.cbr(4096, 256 * 256) == pytest.approx(1 / 16)
    with pytest.raises(ValueError):
        snr.cbr(10, 0)


def test_capacity():
    assert snr.capacity_bits_per_symbol(0) == pytest.approx(1.0)
    assert snr.capacity_bits_per_symbol(10 * math.log10(3)) == pytest.approx(2.0)


@pytest.mark.parametrize("spec,expected", [
    ("0,5,10", [0, 5, 10]),
    ("-5:25:5", [-5, 0, 5, 10, 15, 20, 25]),
    ("1/16", [0.0625]),
    ("1/64,1/32", [1 / 64, 1 / 32]),
    ("3", [3.0]),
])
def test_parse_spec(spec, expected):
    assert snr.parse_spec(spec) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["", "5:0:1", "a,b", "0:10:0", "1/0"])
def test_parse_spec_rejects(bad):
    with pytest.raises(ValueError):
        snr.parse_spec(bad)


def test_psnr_hand_computed():
    ref = np.zeros((4, 4))
    test = np.zeros((4, 4))
    test[0, 0] = 16  # MSE = 256/16 = 16
    assert metrics.psnr(ref, test) == pytest.approx(10 * math.log10(255**2 / 16))
    assert metrics.psnr(ref, ref) == metrics.PSNR_CAP_DB
    # values outside [0, 255] are clipped before comparison
    assert metrics.psnr(ref, np.full((4, 4), -50.0)) == metrics.PSNR_CAP_DB


def test_roi_psnr_counts_only_mask_pixels():
    ref = np.zeros((4, 4))
    test = np.zeros((4, 4))
    test[3, 3] = 100
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    assert metrics.roi_psnr(ref, test, mask) == metrics.PSNR_CAP_DB
    mask[3, 3] = True  # 5 pixels, one error of 100 -> MSE 2000
    assert metrics.roi_psnr(ref, test, mask) == pytest.approx(10 * math.log10(255**2 / 2000))
    with pytest.raises(ValueError, match="mask shape"):
        metrics.roi_psnr(ref, test, np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="empty"):
        metrics.roi_psnr(ref, test, np.zeros((4, 4), bool))


def test_ms_ssim_identity_and_degradation(rng):
    img = rng.uniform(0, 255, (256, 256))
    assert metrics.ms_ssim(img, img) == pytest.approx(1.0, abs=1e-5)
    noisy = img + rng.normal(0, 40, img.shape)
    assert metrics.ms_ssim(img, noisy) < 0.95
    small = rng.uniform(0, 255, (64, 64))
    assert metrics.ms_ssim(small, small) == pytest.approx(1.0, abs=1e-5)


def test_config_roundtrip_and_errors(tmp_path):
    cfg = config.LinkConfig.from_dict({"codec": {"cbr": 0.125}, "channel": {"snr_db": 3}})
    assert cfg.codec.cbr == 0.125 and cfg.channel.snr_db == 3
    assert config.LinkConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(MedJSCCError, match="unknown config key codec.nope"):
        config.LinkConfig.from_dict({"codec": {"nope": 1}})
    with pytest.raises(MedJSCCError, match="channel.kind"):
        config.LinkConfig.from_dict({"channel": {"kind": "laser"}})
    p = tmp_path / "c.yaml"
    p.write_text("codec:\n  model: ntscc\nimage_size: 128\n")
    assert config.LinkConfig.from_yaml(p).codec.model == "ntscc"
    with pytest.raises(MedJSCCError, match="not found"):
        config.LinkConfig.from_yaml(tmp_path / "missing.yaml")


def test_config_from_cli_flags():
    import argparse

    p = argparse.ArgumentParser()
    config.LinkConfig.add_arguments(p)
    args = p.parse_args(["--codec-cbr", "1/32", "--channel-kind", "rayleigh", "--ofdm-fft-len", "128"])
    cfg = config.LinkConfig.from_args(args)
    assert cfg.codec.cbr == pytest.approx(1 / 32)
    assert cfg.channel.kind == "rayleigh" and cfg.ofdm.fft_len == 128


def test_ofdm_defaults_agree_everywhere():
    """OfdmConfig is the source of the OFDM defaults; the phy core's OfdmParams, the GRC YAML
    and the block signatures repeat them and must not drift apart."""
    import ast
    import dataclasses
    import inspect
    from pathlib import Path

    import yaml

    from gnuradio.medjscc.phy.params import OfdmParams

    cfg = {f.name: f.default for f in dataclasses.fields(config.OfdmConfig)}
    par = {f.name: f.default for f in dataclasses.fields(OfdmParams)}
    shared = sorted(set(cfg) & set(par))
    assert {"fft_len", "n_long", "detect_threshold", "n_short_reps"} <= set(shared)
    assert {k: cfg[k] for k in shared} == {k: par[k] for k in shared}

    grc = Path(__file__).resolve().parents[1] / "gr-medjscc" / "grc"
    for name in ("ofdm_analog_tx", "ofdm_analog_rx"):
        doc = yaml.safe_load((grc / f"medjscc_{name}.block.yml").read_text())
        checked = 0
        for p in doc["parameters"]:
            if p["id"] in cfg and p["id"] != "pilot_carriers":
                # a string parameter's default is its text (GRC: equalizer 'mmse' shows as mmse)
                raw = str(p["default"])
                value = raw if p["dtype"] == "string" else ast.literal_eval(raw)
                assert value == cfg[p["id"]], (name, p["id"])
                checked += 1
        assert checked >= 7, name
    pytest.importorskip("gnuradio.gr")
    from gnuradio.medjscc.blocks import ofdm_analog_rx, ofdm_analog_tx

    for block in (ofdm_analog_tx, ofdm_analog_rx):
        for pname, p in inspect.signature(block.__init__).parameters.items():
            if pname in cfg and pname != "pilot_carriers":
                assert p.default == cfg[pname], (block.__name__, pname)
