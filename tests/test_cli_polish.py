"""Command-line details users trip over: help on every option, allowed values shown, one name per
concept, no empty "(default: )", `roi --overlay` alone, `medjscc grc`."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gnuradio.medjscc import cli

ROOT = Path(__file__).resolve().parents[1]


def _subparsers(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subparsers(sub, (*prefix, name))


def test_every_option_has_help_and_no_placeholder_metavars():
    missing, placeholders = [], []
    for name, sub in _subparsers(cli.build_parser()):
        for a in sub._actions:
            if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) or a.help == argparse.SUPPRESS:
                continue
            if not (a.help or "").strip():
                missing.append((" ".join(name), a.option_strings or a.dest))
        usage = sub.format_usage()
        if "__" in usage:                       # CODEC__MODEL-style metavars from dest names
            placeholders.append(" ".join(name))
        text = " ".join(sub.format_help().split())
        assert "(default: )" not in text, name
    assert not missing, f"options without help: {missing}"
    assert not placeholders, f"dest-name metavars in: {placeholders}"


def test_config_flags_show_allowed_values_and_help():
    sub = dict(_subparsers(cli.build_parser()))[("rx",)]
    text = " ".join(sub.format_help().split())
    assert "--ofdm-equalizer {zf,mmse}" in text
    assert "--codec-model TEXT codec: medjscc, medjscc_csi" in text
    assert "--channel-snr-db DB channel SNR" in text


def test_rx_has_one_name_for_its_channel():
    sub = dict(_subparsers(cli.build_parser()))[("rx",)]
    help_text = sub.format_help()
    assert "--sim-channel" in help_text and "--channel-kind" not in help_text
    assert "b200_pair_2g4" in help_text                      # radio profiles are presets too
    args = sub.parse_args(["--zmq", "--sim-channel", "b200_pair_2g4"])
    assert args.sim_channel == "b200_pair_2g4"
    r = subprocess.run([sys.executable, "-c", (
        "from gnuradio.medjscc import cli; p = cli.build_parser(); "
        "a = p.parse_args(['rx', '--zmq', '--channel-kind', 'rayleigh']); print(a.sim_channel)")],
        capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "rayleigh" and "deprecated" in r.stderr, r.stderr
    with pytest.raises(SystemExit):
        sub.parse_args(["--zmq", "--sim-channel", "awgnn"])


def test_roi_overlay_alone(tmp_path, capsys):
    img = np.full((64, 64), 40, np.uint8)
    img[16:48, 8:28] = img[16:48, 36:56] = 200
    src = tmp_path / "x.png"
    Image.fromarray(img).save(src)
    ov = tmp_path / "ov.png"
    assert cli.main(["roi", str(src), "--auto-fusion", "coarse", "--overlay", str(ov), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ov.is_file() and summary["mask"] is None and summary["overlay"] == str(ov)
    assert cli.main(["roi", str(src)]) == 1
    assert "--out MASK.png and/or --overlay" in capsys.readouterr().err


def test_grc_command_runs_grc_under_this_python_with_our_blocks():
    r = subprocess.run([sys.executable, "-m", "gnuradio.medjscc", "grc", "--print-command", "loopback_sim"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert line.startswith(f"GRC_BLOCKS_PATH={ROOT / 'gr-medjscc' / 'grc'}")
    assert f" {sys.executable} " in line and "gnuradio-companion" in line
    assert line.endswith(str(ROOT / "flowgraphs" / "loopback_sim.grc"))
    r = subprocess.run([sys.executable, "-m", "gnuradio.medjscc", "grc", "--print-command", "nope"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "loopback_sim" in r.stderr     # names the shipped flowgraphs


def test_grc_without_display_is_one_line(monkeypatch):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = subprocess.run([sys.executable, "-m", "gnuradio.medjscc", "grc", "loopback_sim"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "xvfb-run" in r.stderr or "gir1.2-gtk-3.0" in r.stderr
