#!/usr/bin/env bash
# Idempotent installer behind `make demo` / `make test`: Debian packages, then .venv.
# A second run only checks stamps (a few seconds). Needs root (or sudo) for apt on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="gnuradio python3-zmq uhd-host python3-uhd python3-venv python3-dev xvfb cmake make g++ git"
# GNU Radio Companion (make grc): GTK 3 introspection and cairo for PyGObject (--no-install-recommends
# leaves them out); xterm: GRC runs no-GUI flowgraphs in a terminal (their "Press Enter to quit");
# xauth for xvfb-run and imagemagick's `import` for make screenshots.
APT_PACKAGES="$APT_PACKAGES gir1.2-gtk-3.0 python3-gi python3-gi-cairo gir1.2-pango-1.0 librsvg2-common adwaita-icon-theme xterm xauth imagemagick"
VENV=.venv
PY=$VENV/bin/python
STAMP=$VENV/.medjscc-setup-stamp

log() { printf '[setup] %s\n' "$*"; }

# --- 1. Debian packages -------------------------------------------------------------------
missing=""
for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    log "installing Debian packages:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# --- 2. virtual environment bound to Debian's python3 (GNU Radio's bindings live there) -----
if [ ! -x "$PY" ]; then
    log "creating $VENV (system site packages visible for GNU Radio)"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi

want=$(cat requirements/*.txt pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    log "environment up to date"
    exit 0
fi

# pip on this kind of machine warns about optional local index folders: hide only those lines.
pip_install() {
    "$PY" -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt "$@" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}
PIP=pip_install
log "installing torch/torchvision (pinned; taken from the local wheel cache when present)"
$PIP torch==2.14.1 torchvision==0.29.1 numpy==1.26.4
log "installing Python dependencies"
SAM2_BUILD_CUDA=0 $PIP -r requirements/base.txt -r requirements/models.txt -r requirements/test.txt
$PIP --no-deps -r requirements/nodeps.txt
log "installing gr-medjscc (editable)"
# compat mode puts the source folder on sys.path via a .pth, which GNU Radio's
# pkgutil.extend_path needs to find the gnuradio.medjscc namespace portion.
$PIP --no-deps --no-build-isolation -e . --config-settings editable_mode=compat

"$PY" - <<'PY'
import numpy, torch
assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__}: GNU Radio needs numpy<2"
from gnuradio import gr, medjscc  # noqa: F401
print(f"[setup] ok: GNU Radio {gr.version()}, torch {torch.__version__}, numpy {numpy.__version__}")
PY
echo "$want" > "$STAMP"
