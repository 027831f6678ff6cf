"""``medjscc grc [FLOWGRAPH]``: open GNU Radio Companion with gr-medjscc's blocks.

GRC runs a flowgraph with the interpreter GRC itself runs under (``{python}`` in the run
command), so GRC is started with this interpreter (the .venv with torch and gr-medjscc):
Run (F6) then works. GRC_BLOCKS_PATH gets our block folder in front.
"""
from __future__ import annotations

COMMAND = "grc"
HELP = "open GNU Radio Companion with the gr-medjscc blocks (Run works: flowgraphs use this Python)"
DESCRIPTION = HELP + (". FLOWGRAPH is a .grc path or the name of a shipped flowgraph "
                      "(loopback_sim, loopback_nogui, zmq_tx, zmq_rx, usrp_tx, usrp_rx).")


def add_arguments(parser):
    parser.add_argument("flowgraph", nargs="*", metavar="FLOWGRAPH",
                        help="flowgraph(s) to open: a .grc file or a shipped name such as loopback_sim "
                             "(none: GRC's last session)")
    parser.add_argument("--print-command", action="store_true",
                        help="print the environment and command instead of starting GRC")


def find_flowgraph(name: str):
    """A .grc path as given, else a shipped flowgraph by name (with or without .grc)."""
    from pathlib import Path

    from ..errors import InputError
    from ..paths import flowgraphs_dir

    p = Path(name)
    if p.is_file():
        return p.resolve()
    try:
        shipped = flowgraphs_dir()
    except FileNotFoundError:
        shipped = None
    if shipped is not None:
        cand = shipped / (p.name if p.suffix == ".grc" else p.name + ".grc")
        if cand.is_file():
            return cand
        names = ", ".join(sorted(f.stem for f in shipped.glob("*.grc")))
        raise InputError(f"flowgraph {name!r} not found (a .grc file, or one of: {names})")
    raise InputError(f"flowgraph {name!r} not found")


def grc_command(flowgraphs=()):
    """(argv, env) that start GRC under this interpreter with our blocks on GRC_BLOCKS_PATH."""
    import os
    import shutil
    import sys

    from ..errors import MedJSCCError
    from ..paths import grc_dir

    exe = shutil.which("gnuradio-companion") or "/usr/bin/gnuradio-companion"
    if not os.path.isfile(exe):
        raise MedJSCCError("gnuradio-companion not found: install the Debian package gnuradio (make setup)")
    env = dict(os.environ)
    paths = [str(grc_dir())] + [p for p in env.get("GRC_BLOCKS_PATH", "").split(os.pathsep) if p]
    env["GRC_BLOCKS_PATH"] = os.pathsep.join(dict.fromkeys(paths))   # ours first, no duplicates
    return [sys.executable, exe, *[str(find_flowgraph(f)) for f in flowgraphs]], env


def check_gui():
    """Fail with one line when GRC could not open a window (rather than GRC's dialog-less crash)."""
    import os

    from ..errors import MedJSCCError

    try:
        import gi

        gi.require_version("Gtk", "3.0")
        gi.require_version("PangoCairo", "1.0")
    except (ImportError, ValueError) as e:
        raise MedJSCCError(f"GRC needs GTK 3 for Python ({e}): apt-get install gir1.2-gtk-3.0 "
                           "python3-gi-cairo (make setup does)") from None
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise MedJSCCError("no display (DISPLAY/WAYLAND_DISPLAY unset): run on a desktop, with ssh -X, "
                           "or under xvfb-run")


def run(args):
    import os
    import shlex

    argv, env = grc_command(args.flowgraph)
    if args.print_command:
        print(f"GRC_BLOCKS_PATH={shlex.quote(env['GRC_BLOCKS_PATH'])} {shlex.join(argv)}")
        return 0
    check_gui()
    os.execve(argv[0], argv, env)
