"""The CMake OOT install puts the same package, GRC blocks and flowgraphs under a prefix."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_cmake_install(tmp_path):
    build, prefix = tmp_path / "build", tmp_path / "prefix"
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={prefix}",
                    "-DPython3_EXECUTABLE=/usr/bin/python3"],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    subprocess.run(["cmake", "--install", str(build)], check=True, capture_output=True)

    pkg = list(prefix.glob("lib/python3*/*-packages/gnuradio/medjscc/__init__.py"))
    assert pkg, "package not installed"
    assert not (pkg[0].parents[1] / "__init__.py").exists(), "must not install gnuradio/__init__.py"
    blocks = list((prefix / "share/gnuradio/grc/blocks").glob("medjscc_*.block.yml"))
    assert blocks, "GRC block files not installed"
    assert sorted(p.name for p in blocks) == sorted(p.name for p in (ROOT / "gr-medjscc/grc").glob("medjscc_*.block.yml"))
    grcs = sorted(p.name for p in (ROOT / "flowgraphs").glob("*.grc"))
    assert sorted(p.name for p in (prefix / "share/gr-medjscc/flowgraphs").glob("*.grc")) == grcs
    samples = sorted(p.name for p in (prefix / "share/gr-medjscc/flowgraphs/samples").glob("*.png"))
    assert samples == ["chest_drr.png", "chest_drr_mask.png"]       # the flowgraphs' default image

    # The installed copy (not the editable checkout) imports under the system python, and the
    # launcher runs; the share/ models folder is found from the installed package.
    site = pkg[0].parents[2]
    code = ("import sys; sys.path.insert(0, %r); from gnuradio import medjscc; "
            "from gnuradio.medjscc import paths; print(medjscc.__file__); print(paths.models_dir()); "
            "print(paths.sample_image())" % str(site))
    out = subprocess.run(["/usr/bin/python3", "-c", code], check=True, capture_output=True, text=True,
                         cwd=tmp_path).stdout.split()
    assert out[0].startswith(str(prefix)), out
    assert out[1].startswith(str(prefix)), out
    assert out[2].startswith(str(prefix)) and Path(out[2]).is_file(), out
    r = subprocess.run([str(prefix / "bin/medjscc"), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "grc-path" in r.stdout, r.stderr


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("grcc") is None, reason="cmake/grcc missing")
def test_installed_blocks_compile_into_a_flowgraph(tmp_path):
    """grcc against the installed block files (the path CMake prints) keeps our blocks in the
    generated flowgraph; configure names the Python it uses and how GRC finds a custom prefix."""
    import os

    build, prefix = tmp_path / "build", tmp_path / "prefix"
    cfg = subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={prefix}"],
                         check=True, capture_output=True, text=True).stdout
    assert "gr-medjscc: Python /usr/bin/python3" in cfg
    assert f"GRC_BLOCKS_PATH={prefix}/share/gnuradio/grc/blocks" in cfg
    subprocess.run(["cmake", "--install", str(build)], check=True, capture_output=True)
    site = next(prefix.glob("lib/python3*/*-packages"))
    env = dict(os.environ, GRC_BLOCKS_PATH=str(prefix / "share/gnuradio/grc/blocks"), PYTHONPATH=str(site))
    out = tmp_path / "out"
    out.mkdir()
    flowgraph = prefix / "share/gr-medjscc/flowgraphs/loopback_nogui.grc"
    r = subprocess.run(["/usr/bin/python3", shutil.which("grcc"), "-o", str(out), str(flowgraph)],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    code = next(out.glob("*.py")).read_text()
    assert "medjscc.jscc_tx(" in code and "medjscc.jscc_rx(" in code and "medjscc.ofdm_analog_rx(" in code
