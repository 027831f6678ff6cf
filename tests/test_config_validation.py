"""Configuration errors are one line naming the key, the file and what is allowed (no traceback)."""
import math

import numpy as np
import pytest

from gnuradio.medjscc.config import LinkConfig
from gnuradio.medjscc.errors import MedJSCCError

# (YAML text, words the one-line error must contain)
BAD_YAML = [
    ('codec: {cbr: "abc"}\n', ["codec.cbr", "number", "'abc'"]),
    ('ofdm: {fft_len: "64"}\n', ["ofdm.fft_len", "whole number", "'64'"]),
    ("image_size: big\n", ["image_size", "[16, 4096]", "'big'"]),
    ("- codec\n- ofdm\n", ["mapping", "codec", "list"]),
    ("channel: {snr_db: [1, 2]}\n", ["channel.snr_db", "number", "[1, 2]"]),
    ("codec: {cbr: 2}\n", ["codec.cbr", "(0, 1]"]),
    ("codec: 5\n", ["codec", "mapping"]),
    ("channel: {kind: laser}\n", ["channel.kind", "awgn"]),
    ("channel: {cfo: .nan}\n", ["channel.cfo", "NaN"]),
    ("codec: {threads: 0}\n", ["codec.threads"]),
    ("roi: {sam2_checkpoint: 7}\n", ["roi.sam2_checkpoint", "string or null"]),
    ("image_size: 8\n", ["image_size", "[16, 4096]"]),
    ("codec: {cbr: [\n", ["not valid YAML"]),
]


@pytest.mark.parametrize("text,words", BAD_YAML)
def test_bad_yaml_is_one_line_naming_key_and_file(tmp_path, text, words):
    p = tmp_path / "link.yaml"
    p.write_text(text)
    with pytest.raises(MedJSCCError) as e:
        LinkConfig.from_yaml(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg
    for w in words:
        assert w in msg, (w, msg)


def test_types_are_normalised_not_guessed():
    cfg = LinkConfig.from_dict({"codec": {"cbr": "1/8"}, "channel": {"snr_db": 3, "cfo": 1.5}})
    assert cfg.codec.cbr == 0.125 and isinstance(cfg.channel.snr_db, float)
    assert LinkConfig.from_dict({"ofdm": {"max_latency_ms": math.inf}}).ofdm.max_latency_ms == math.inf
    assert LinkConfig.from_dict(None) == LinkConfig() == LinkConfig.from_dict({"codec": None})
    for bad in ({"image_size": True}, {"image_size": 256.0}, {"ofdm": {"fft_len": 64.5}},
                {"channel": {"cfo": 40.0}}, {"codec": {"device": "gpu"}}):
        with pytest.raises(MedJSCCError):
            LinkConfig.from_dict(bad)


def test_python_api_checks_types_too():
    cfg = LinkConfig()
    cfg.codec.cbr = "abc"
    with pytest.raises(MedJSCCError, match="codec.cbr"):
        cfg.validate()


@pytest.mark.gnuradio
@pytest.mark.parametrize("command", ["rx", "tx"])
@pytest.mark.parametrize("text,words", BAD_YAML[:5])
def test_cli_config_error_exits_1_with_one_line(command, text, words, tmp_path, capsys):
    from PIL import Image

    from gnuradio.medjscc import cli

    p = tmp_path / "link.yaml"
    p.write_text(text)
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(img)
    argv = [command, "--zmq", "--config", str(p), "--random-weights"] + ([str(img)] if command == "tx" else [])
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(p) in err and words[0] in err


def test_boolean_config_flags_switch_both_ways():
    """A config flag that is on by default (ofdm.interleave) can be switched off on the CLI."""
    import argparse

    from gnuradio.medjscc.config import LinkConfig

    ap = argparse.ArgumentParser()
    LinkConfig.add_arguments(ap, sections=("ofdm",))
    assert LinkConfig.from_args(ap.parse_args([])).ofdm.interleave is True
    assert LinkConfig.from_args(ap.parse_args(["--no-ofdm-interleave"])).ofdm.interleave is False
    assert LinkConfig.from_args(ap.parse_args(["--ofdm-pilot-amplitude"])).ofdm.pilot_amplitude is True
