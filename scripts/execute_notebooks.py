#!/usr/bin/env python3
"""Execute the notebooks in notebooks/ and save them with their outputs and figures, so they read
on a repository browser.

    .venv/bin/python scripts/execute_notebooks.py [NOTEBOOK ...]     (make notebooks)

Each notebook runs in a fresh kernel of this interpreter, from a scratch folder (nothing is
written into the repository but the notebook), with its own default settings: the shipped codec
weights and the small DRR test split. The saved outputs must not name this machine: an output
holding an absolute path of it (repository, interpreter, home, temp folder) is an error, and
Python warnings (which print source paths) are off in the kernel.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def machine_paths() -> list[str]:
    """Absolute paths of this machine that must not appear in saved outputs."""
    paths = {str(ROOT), sys.prefix, sys.base_prefix, str(Path.home()), tempfile.gettempdir(), "/work/", "/home/",
             "/root/", "/tmp/"}
    return sorted(p for p in paths if len(p) > 1)


def leaks(nb) -> list[str]:
    """Output snippets that name an absolute path of this machine."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = out.get("text", "") + json.dumps({k: v for k, v in out.get("data", {}).items()
                                                     if k != "image/png"})
            for p in machine_paths():
                i = text.find(p)
                if i >= 0:
                    found.append(text[max(0, i - 40):i + 80])
    return found


def execute(path: Path, timeout: int = 300) -> float:
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    kernelspec = dict(nb.metadata.get("kernelspec", {}))
    with tempfile.TemporaryDirectory(prefix="medjscc_nb_") as tmp:
        spec = Path(tmp) / "jupyter" / "kernels" / "medjscc-run"
        spec.mkdir(parents=True)
        # this interpreter (the venv with torch and GNU Radio), whatever 'python3' is on PATH
        spec.joinpath("kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "medjscc", "language": "python",
            "env": {"PYTHONWARNINGS": "ignore", "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}}))
        os.environ["JUPYTER_PATH"] = str(Path(tmp) / "jupyter")
        work = Path(tmp) / "cwd"
        work.mkdir()
        client = nbclient.NotebookClient(nb, kernel_name="medjscc-run", timeout=timeout, record_timing=False,
                                         resources={"metadata": {"path": str(work)}})
        t0 = time.monotonic()
        client.execute()
        elapsed = time.monotonic() - t0
    bad = leaks(nb)
    if bad:
        raise SystemExit(f"{path.name}: outputs name paths of this machine: {bad[:3]}")
    nb.metadata["kernelspec"] = kernelspec or {"display_name": "Python 3 (ipykernel)", "language": "python",
                                               "name": "python3"}
    nbformat.write(nb, path)
    return elapsed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", help="notebooks to run (default: all in notebooks/)")
    p.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = p.parse_args(argv)
    for nb in [Path(n) for n in args.notebooks] or NOTEBOOKS:
        print(f"{nb.name}: {execute(nb, args.timeout):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
