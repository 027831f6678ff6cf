#!/usr/bin/env python3
"""Screenshots of GNU Radio Companion and of the running QT GUI, for docs/screenshots/.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py   (make screenshots)

Writes, for the flowgraph given (default loopback_sim):
  grc_<name>.png        the GRC window with the flowgraph open (X screen grab, ImageMagick `import`)
  <name>_flowgraph.png  the whole flowgraph canvas, drawn by GRC's own "screen capture" code
  <name>_running.png    the QT GUI of the generated script after --seconds of running
Needs an X display (Xvfb), gnuradio-companion, grcc and ImageMagick.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def grab(path: Path):
    """The whole X screen (no window manager under Xvfb: the app sits at 0,0)."""
    subprocess.run(["import", "-window", "root", str(path)], check=True, timeout=60)


def grc_shots(flowgraph: Path, out: Path, settle_s: float) -> list[Path]:
    """Run GRC in a child process (same interpreter, our blocks on GRC_BLOCKS_PATH) that draws
    the canvas itself and quits; the X grab happens from here while it waits."""
    name = flowgraph.stem
    shots = [out / f"grc_{name}.png", out / f"{name}_flowgraph.png"]
    with tempfile.TemporaryDirectory() as tmp:
        prefs = Path(tmp) / "grc.conf"
        # a fresh GRC config: window filling the Xvfb screen, nothing reopened from a last session
        prefs.write_text("[main]\nmain_window_width = 1600\nmain_window_height = 1000\n"
                         "blocks_window_position = 1330\nconsole_window_position = 820\n")
        ready, done = Path(tmp) / "ready", Path(tmp) / "done"
        env = dict(os.environ, GRC_PREFS_PATH=str(prefs),
                   GRC_BLOCKS_PATH=os.pathsep.join(filter(None, [str(ROOT / "gr-medjscc" / "grc"),
                                                                 os.environ.get("GRC_BLOCKS_PATH")])))
        child = subprocess.Popen([sys.executable, __file__, "--_grc-child", str(flowgraph), str(shots[1]),
                                  str(ready), str(done)], env=env)
        try:
            deadline = time.monotonic() + 120
            while not ready.exists():
                if child.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"screenshots: GRC did not start (rc {child.poll()})")
                time.sleep(0.5)
            time.sleep(settle_s)
            grab(shots[0])
            done.touch()
            child.wait(timeout=60)
            clashes = ready.read_text()
            if clashes != "[]":
                raise SystemExit(f"screenshots: blocks of {flowgraph.name} overlap in GRC: {clashes}")
        finally:
            if child.poll() is None:
                child.kill()
    return shots


def _grc_child(flowgraph: str, canvas_png: str, ready: str, done: str):
    import gi

    gi.require_version("Gtk", "3.0")
    from gi.repository import GLib
    from gnuradio import gr
    from gnuradio.grc.gui.Platform import Platform   # this order: GRC's gui modules import each other
    from gnuradio.grc.gui.Application import Application
    from gnuradio.grc.gui import Utils

    platform = Platform(version=gr.version(),
                        version_parts=(gr.major_version(), gr.api_version(), gr.minor_version()),
                        prefs=gr.prefs(), install_prefix=gr.prefix())
    platform.build_library()
    app = Application([flowgraph], platform)

    def shoot():
        page = app.main_window.current_page
        if page is None:
            return True                       # not loaded yet
        Utils.make_screenshot(page.flow_graph, canvas_png)
        # the blocks as GRC really draws them (fonts, ports) must not cover each other
        boxes = {b.name: b.get_extents() for b in page.flow_graph.blocks}
        names = sorted(boxes)
        clashes = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                   if boxes[a][0] < boxes[b][2] and boxes[b][0] < boxes[a][2]
                   and boxes[a][1] < boxes[b][3] and boxes[b][1] < boxes[a][3]]
        # the window shot: whole flowgraph in view (zoom to fit), our blocks open in the library
        x0, y0, x1, y1 = page.flow_graph.get_extents()
        alloc = page.drawing_area.get_parent().get_allocation()     # the visible viewport
        page.drawing_area._set_zoom_factor(min(1.0, alloc.width / (x1 + 40), alloc.height / (y1 + 40)))
        btwin = app.main_window.btwin
        ours = btwin._categories.get(("Med-JSCC",))
        if ours is not None:
            btwin.treeview.collapse_all()
            btwin.treeview.expand_row(btwin.treestore.get_path(ours), True)
        Path(ready).write_text(repr(clashes))
        GLib.timeout_add(300, wait_done)
        return False

    def wait_done():
        if Path(done).exists():
            os._exit(0)                       # skip GRC's save-session and quit dialogs
        return True

    GLib.timeout_add(3000, shoot)
    app.run()


_BIG_WINDOW = """
import runpy, sys
from PyQt5 import Qt
_show = Qt.QWidget.show
def show(self):
    if self.isWindow():
        self.resize(1580, 980)
    _show(self)
Qt.QWidget.show = show
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def gui_shot(flowgraph: Path, out: Path, seconds: float) -> Path:
    """Compile with grcc, run the QT flowgraph on the display, grab it after `seconds`."""
    shot = out / f"{flowgraph.stem}_running.png"
    env = dict(os.environ, GRC_BLOCKS_PATH=str(ROOT / "gr-medjscc" / "grc"), PYTHONUNBUFFERED="1")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, shutil.which("grcc"), "-o", tmp, str(flowgraph)], env=env, check=True,
                       capture_output=True, timeout=300)
        script = next(Path(tmp).glob("*.py"))
        # run the generated script with its top-level window enlarged to the screen (no window
        # manager under Xvfb, and GRC's window_size only applies to Bokeh GUIs)
        proc = subprocess.Popen([sys.executable, "-c", _BIG_WINDOW, str(script), "--out-dir", str(Path(tmp) / "rx")],
                                env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                cwd=tmp)
        try:
            time.sleep(seconds)
            if proc.poll() is not None:
                raise SystemExit(f"screenshots: {script.name} exited early (rc {proc.returncode}): "
                                 + proc.stderr.read().decode(errors="replace")[-2000:])
            grab(shot)
        finally:
            proc.kill()
            proc.wait()
    return shot


def main(argv=None):
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--_grc-child":
        return _grc_child(*sys.argv[2:6])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("flowgraph", nargs="?", default=str(ROOT / "flowgraphs" / "loopback_sim.grc"),
                   help="a .grc file (QT GUI flowgraphs also get a running screenshot)")
    p.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="output folder")
    p.add_argument("--seconds", type=float, default=45.0,
                   help="run time of the QT GUI before its screenshot (start-up takes ~25 s on 2 cores)")
    p.add_argument("--settle", type=float, default=3.0, help="seconds between GRC loaded and its screenshot")
    p.add_argument("--no-run", action="store_true", help="GRC screenshots only")
    args = p.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        raise SystemExit("screenshots: no DISPLAY; run under xvfb-run (make screenshots does)")
    for tool in ("import", "grcc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"screenshots: {tool} not found (make setup installs imagemagick and gnuradio)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fg = Path(args.flowgraph).resolve()
    shots = grc_shots(fg, out, args.settle)
    if not args.no_run and "generate_options: qt_gui" in fg.read_text():
        shots.append(gui_shot(fg, out, args.seconds))
    for s in shots:
        print(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
