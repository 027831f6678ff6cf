import re
import subprocess
import sys


from gnuradio.medjscc import cli


def _run(*argv):
    return subprocess.run([sys.executable, "-m", "gnuradio.medjscc", *argv],
                          capture_output=True, text=True, timeout=120)


def test_help_lists_commands():
    r = _run("--help")
    assert r.returncode == 0
    assert "grc-path" in r.stdout


def test_every_command_has_help():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices, "no subcommands registered"
    for name in sub.choices:
        r = _run(name, "--help")
        assert r.returncode == 0, (name, r.stderr)
        assert "usage:" in r.stdout
        # defaults are shown once, and never as the uninformative "(default: None)"
        text = " ".join(r.stdout.split())
        assert "(default: None)" not in text and not re.search(r"\(default: [^)]*\) \(default:", text), name


def test_grc_path_points_at_block_files():
    from pathlib import Path

    r = _run("grc-path")
    assert r.returncode == 0
    folder = Path(r.stdout.strip())
    assert folder.is_dir()
    assert list(folder.glob("*.block.yml")), "no .block.yml files in the GRC folder"
