"""Screenshots of TensorBoard for the README: the HParams tab and the custom-scalars layout of a sweep,
taken with headless Chromium (Debian's `chromium`, installed here when missing and running as root).

    python scripts/tensorboard_screens.py                      # runs a small sweep, writes docs/*.png
    python scripts/tensorboard_screens.py --logdir outputs/multirun/<timestamp> --out docs

The tests (tests/test_tensorboard_ui.py) use the same server and browser helpers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A sweep that shows the thesis in a few minutes on 2 cores: the RNN vanishes at T=50, the LSTM does not,
# and clipping holds the LSTM's pre-clip norm to its threshold.
DEMO_SWEEP = ["-m", "hydra/launcher=parallel", "arm=rnn,lstm,lstm_clip", "data.seq_len=50", "model.hidden_size=32",
              "trainer.max_steps=400", "trainer.val_check_interval=100", "callbacks.grad_flow.every_n_steps=50",
              "optimizer.lr=3e-3"]
# As the project's machines require for a root Chromium, with no network of its own.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--hide-scrollbars"]


def ensure_chromium() -> str:
    """The Chromium binary; installs Debian's package first where it is missing and this is root."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError("chromium is not installed (as root: apt-get install chromium)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)
    return shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(port: int, path: str, body: dict | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def start_tensorboard(logdir: Path, runs: int, timeout: float = 120) -> tuple[subprocess.Popen, int]:
    """A TensorBoard server on loopback over `logdir`, returned once it lists `runs` runs."""
    port = free_port()
    tensorboard = Path(sys.executable).with_name("tensorboard")
    server = subprocess.Popen([str(tensorboard), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if len(get_json(port, "/data/runs")) >= runs:
                return server, port
        except OSError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"TensorBoard did not list {runs} runs of {logdir} within {timeout:.0f} s")


def screenshot(url: str, png: Path, width: int = 1400, height: int = 900, wait_ms: int = 20000) -> Path:
    """Render `url` in headless Chromium and save it as `png` (a fresh profile every time)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([ensure_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--virtual-time-budget={wait_ms}", f"--screenshot={png}", url],
                       check=True, capture_output=True, timeout=wait_ms / 1000 + 90)
    return png


def run_demo_sweep(out: Path) -> Path:
    sweep = out / "sweep"
    subprocess.run([sys.executable, "-m", "rnn_gradients.train", *DEMO_SWEEP, f"hydra.sweep.dir={sweep}"],
                   check=True, cwd=ROOT)
    return sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logdir", type=Path, help="a sweep folder (default: run a small demo sweep first)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        logdir = args.logdir or run_demo_sweep(Path(tmp))
        runs = len(list(logdir.glob("*/tensorboard")))
        server, port = start_tensorboard(logdir, runs)
        try:
            for tab, name in (("hparams", "tensorboard_hparams.png"), ("custom_scalars", "tensorboard_custom_scalars.png")):
                path = screenshot(f"http://127.0.0.1:{port}/#{tab}", args.out / name)
                print(f"wrote {path}")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
