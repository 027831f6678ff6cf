"""`make screenshots` machinery: GRC starts under Xvfb with our blocks, opens loopback_sim.grc and
draws it; the blocks GRC draws (real fonts) do not overlap. Needs xvfb-run and ImageMagick."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gnuradio
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (shutil.which("xvfb-run") and shutil.which("import")), reason="needs xvfb-run and imagemagick")
def test_grc_opens_loopback_sim_under_xvfb(tmp_path):
    from PIL import Image

    proc = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable,
                           str(ROOT / "scripts" / "screenshots.py"), "--no-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    window = np.asarray(Image.open(tmp_path / "grc_loopback_sim.png").convert("L"), float)
    canvas = Image.open(tmp_path / "loopback_sim_flowgraph.png")
    assert window.shape == (1000, 1600)
    # GRC's window fills the screen (not a black Xvfb root with a small window in a corner)
    assert (window[:, :1400] < 10).mean() < 0.05 and window.std() > 20
    # the canvas holds the whole flowgraph: wider than the window, with many distinct colours
    assert canvas.width > 1600 and len(np.unique(np.asarray(canvas.convert("L")))) > 50


_PRESS_RUN = """
import os, shutil, sys, time
import gi
gi.require_version("Gtk", "3.0")
gi.require_version("PangoCairo", "1.0")
from gi.repository import GLib
from gnuradio import gr
from gnuradio.grc.gui.Platform import Platform
from gnuradio.grc.gui.Application import Application
from gnuradio.grc.gui import Actions
platform = Platform(version=gr.version(), version_parts=(gr.major_version(), gr.api_version(), gr.minor_version()),
                    prefs=gr.prefs(), install_prefix=gr.prefix())
platform.build_library()
app = Application([sys.argv[1]], platform)
t0 = []
def tick():
    page = app.main_window.current_page
    if page is None:
        return True
    if not t0:
        t0.append(time.time())
        Actions.FLOW_GRAPH_EXEC()              # what Run (F6) does
        return True
    buf = app.main_window.console.text_display.get_buffer()
    text = buf.get_text(buf.get_start_iter(), buf.get_end_iter(), False)
    if "(psnr . " in text or time.time() - t0[0] > 150:
        if page.process:
            page.process.kill()
        print(text[-3000:], flush=True)
        os._exit(0)
    return True
GLib.timeout_add(1000, tick)
app.run()
"""


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("xvfb-run"), reason="needs xvfb-run")
def test_grc_run_executes_loopback_sim_with_this_python(tmp_path):
    """Run (F6) in GRC: the flowgraph runs under this interpreter and decodes the sample image."""
    import os

    fg = tmp_path / "loopback_sim.grc"                 # GRC writes the .py next to the .grc
    shutil.copy(ROOT / "flowgraphs" / "loopback_sim.grc", fg)
    prefs = tmp_path / "grc.conf"
    prefs.write_text("[main]\nxterm_missing = x-terminal-emulator\n")   # skip GRC's one-time dialog
    env = dict(os.environ, GRC_PREFS_PATH=str(prefs), GRC_BLOCKS_PATH=str(ROOT / "gr-medjscc" / "grc"),
               OMP_NUM_THREADS="1")
    proc = subprocess.run(["xvfb-run", "-a", sys.executable, "-c", _PRESS_RUN, str(fg)], env=env,
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert f"Executing: {sys.executable} -u {tmp_path / 'loopback_sim.py'}" in out, out[-3000:]
    assert "(roi_psnr . " in out and "(psnr . " in out, out[-3000:]
