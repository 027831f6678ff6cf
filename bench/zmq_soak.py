#!/usr/bin/env python3
"""Two-process ZMQ soak on 127.0.0.1: does every image sent unpaced come out of the receiver?

    python bench/zmq_soak.py --json [--images 200] [--max-pending 32] [--timeout 600]

Starts ``medjscc rx --zmq`` and, once it listens, ``medjscc tx --zmq --repeat N`` (no pacing:
the transmitter runs as fast as it encodes, which can outrun the decoder) on ports chosen at run
time. The receiver stops after N results or when idle. One record: ``images_sent`` (what the TX
says left it), ``images_decoded``, ``images_dropped`` (reported ``dropped``: the decoder fell
behind by more than ``--max-pending`` images), ``images_failed`` (a result that is not decoded,
e.g. side info lost), ``images_lost`` (sent, with no result at all: every frame lost),
``rx_rss_start_mb`` (receiver listening, codec loaded), ``rx_rss_end_mb`` (last sample before it
exited), ``rx_rss_peak_mb``, the exit codes, the receiver's stop reason, and wall time.
Bounded: every process is killed at ``--timeout``; loopback only.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from phy_common import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["images_sent", "images_decoded", "images_dropped", "images_failed", "images_lost",
           "rx_rss_start_mb", "rx_rss_end_mb", "rx_rss_peak_mb", "rx_reason", "wall_s"]


def free_port() -> int:
    from gnuradio.medjscc.netaddr import free_loopback_port   # random, below the ephemeral range

    return free_loopback_port()


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def wait_listening(port: int, proc, deadline: float) -> bool:
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def sample_image(path: Path) -> Path:
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:256, 0:256] / 256
    Image.fromarray((120 + 80 * np.sin(3 * x) * np.cos(2 * y)).astype(np.uint8)).save(path)
    return path


def soak(n_images: int, timeout_s: float, max_pending: int, idle_timeout_s: float, model: str,
         random_weights: bool, image: str | None) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("OMP_NUM_THREADS", "2")
    common = ["--codec-model", model] + (["--random-weights"] if random_weights else [])
    iq_port = free_port()
    fb_port = free_port()
    while fb_port == iq_port:
        fb_port = free_port()
    iq, fb = f"tcp://127.0.0.1:{iq_port}", f"tcp://127.0.0.1:{fb_port}"
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    procs = []
    with tempfile.TemporaryDirectory(prefix="zmq_soak_") as tmp:
        img = image or str(sample_image(Path(tmp) / "soak.png"))
        py = [sys.executable, "-m", "gnuradio.medjscc"]
        rx = subprocess.Popen(py + ["rx", "--zmq", iq, "--snr-address", fb, "--images", str(n_images),
                                    "--idle-timeout", str(idle_timeout_s), "--duration", str(timeout_s),
                                    "--max-pending", str(max_pending)] + common,
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(rx)
        out = {"rx": [], "rx_err": [], "tx": [], "tx_err": []}
        readers = [threading.Thread(target=lambda f=f, k=k: out[k].extend(iter(f.readline, "")), daemon=True)
                   for f, k in ((rx.stdout, "rx"), (rx.stderr, "rx_err"))]
        for t in readers:
            t.start()
        rss = {"start": None, "end": None, "peak": None}
        tx = None
        try:
            # the RX binds the SNR publisher once its flowgraph runs (codec loaded): then the TX
            if not wait_listening(fb_port, rx, deadline):
                raise RuntimeError("receiver did not start: " + "".join(out["rx_err"])[-500:])
            rss["start"] = rss_mb(rx.pid)
            tx = subprocess.Popen(py + ["tx", img, "--zmq", iq, "--snr-address", fb, "--repeat", str(n_images),
                                        "--timeout", str(max(deadline - time.monotonic(), 1.0))] + common,
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(tx)
            for f, k in ((tx.stdout, "tx"), (tx.stderr, "tx_err")):
                t = threading.Thread(target=lambda f=f, k=k: out[k].extend(iter(f.readline, "")), daemon=True)
                t.start()
                readers.append(t)
            while rx.poll() is None and time.monotonic() < deadline:
                r = rss_mb(rx.pid)
                if r is not None:
                    rss["end"] = r
                    rss["peak"] = max(rss["peak"] or 0.0, r)
                time.sleep(0.2)
            timed_out = rx.poll() is None
            if tx.poll() is None:
                tx.wait(timeout=max(deadline - time.monotonic(), 10.0))
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            for p in procs:   # only the processes this bench started
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=10)
            for t in readers:
                t.join(timeout=5)
    rows = [json.loads(ln) for ln in out["rx"] if ln.startswith("{")]
    results = [r for r in rows if "image_id" in r]
    summary = next((r["summary"] for r in reversed(rows) if "summary" in r), {})
    tx_rows = [json.loads(ln) for ln in out["tx"] if ln.startswith("{")]
    tx_res = tx_rows[-1] if tx_rows else {}
    sent = int(tx_res.get("images_sent", 0))
    decoded = sum(bool(r.get("decoded")) for r in results)
    dropped = sum(r.get("status") == "dropped" for r in results)
    return {
        "images_requested": n_images, "images_sent": sent, "images_results": len(results),
        "images_decoded": decoded, "images_dropped": dropped,
        "images_failed": len(results) - decoded - dropped,
        "images_lost": max(sent - len(results), 0),
        "statuses": {s: sum(r.get("status") == s for r in results) for s in sorted({r.get("status") for r in results})},
        "rx_rss_start_mb": rss["start"], "rx_rss_end_mb": rss["end"], "rx_rss_peak_mb": rss["peak"],
        "rx_reason": summary.get("reason"), "rx_stopped_cleanly": summary.get("stopped_cleanly"),
        "rx_returncode": rx.returncode,
        "tx_returncode": tx.returncode if tx is not None else None,
        "tx_completed": tx_res.get("completed"), "tx_receiver_heard": tx_res.get("receiver_heard"),
        "max_pending": max_pending, "timed_out": bool(timed_out),
        "wall_s": time.monotonic() - t0,
        "rx_stderr_tail": "".join(out["rx_err"])[-1500:] if rx.returncode else "",
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200, help="images sent (tx --repeat N of one image)")
    ap.add_argument("--max-pending", type=int, default=32, help="rx --max-pending (0 = no bound)")
    ap.add_argument("--idle-timeout", type=float, default=10.0, help="rx --idle-timeout (seconds)")
    ap.add_argument("--timeout", type=float, default=600.0, help="the whole soak ends by then (seconds)")
    ap.add_argument("--model", default="medjscc", help="codec name or weights path (both ends)")
    ap.add_argument("--random-weights", action="store_true", help="random codec weights (smoke tests)")
    ap.add_argument("--image", default=None, help="image to send (default: a synthetic 256x256 PNG)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)
    if args.images < 1 or args.images > 65535 or args.timeout <= 0 or args.max_pending < 0:
        print("zmq_soak: --images must be 1..65535, --timeout > 0, --max-pending >= 0", file=sys.stderr)
        return 2
    try:
        rec = soak(args.images, args.timeout, args.max_pending, args.idle_timeout, args.model,
                   args.random_weights, args.image)
    except RuntimeError as e:
        print(f"zmq_soak: {e}", file=sys.stderr)
        return 1
    emit(rec, args.json, COLUMNS)
    return 0 if rec["rx_returncode"] == 0 and not rec["timed_out"] else 1


if __name__ == "__main__":
    sys.exit(main())
