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
