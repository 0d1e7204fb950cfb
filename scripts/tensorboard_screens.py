"""Screenshots of TensorBoard for the README: the HParams tab and the custom-scalars layout of a sweep,
taken with headless Chromium (Debian's `chromium`, installed here when missing and running as root).

    python scripts/tensorboard_screens.py                      # runs a small sweep, writes docs/*.png
    python scripts/tensorboard_screens.py --logdir outputs/multirun/<timestamp> --out docs

The tests (tests/test_tensorboard_ui.py) use the same server and browser helpers, and `Page` to read the
text a person sees on a TensorBoard tab.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class Text:
    """A piece of text on the screen and where: its box's left edge and vertical centre, in CSS pixels."""

    text: str
    left: float
    middle: float


# Every text node that is rendered, on screen and not hidden, shadow roots included (TensorBoard's
# dashboards are Polymer elements: their tables live in shadow DOM, which --dump-dom leaves out).
_VISIBLE_TEXT_JS = r"""(() => {
  const out = [];
  const walk = (root) => {
    for (const node of root.childNodes) {
      if (node.nodeType === Node.ELEMENT_NODE) {
        if (node.shadowRoot) walk(node.shadowRoot);
        walk(node);
        continue;
      }
      const text = node.nodeType === Node.TEXT_NODE ? node.data.trim() : "";
      const parent = node.parentElement;
      if (!text || !parent || !parent.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      const box = range.getBoundingClientRect();
      if (box.width > 0 && box.height > 0 && box.bottom > 0 && box.top < innerHeight && box.right > 0 && box.left < innerWidth)
        out.push([text, box.left, (box.top + box.bottom) / 2]);
    }
  };
  walk(document);
  return out;
})()"""


class Page:
    """One page in headless Chromium, driven over the DevTools protocol on a pipe (--remote-debugging-pipe).

    Standard library only: selenium and chromedriver are no dependency of the project, and the pipe needs no
    websocket client. Use as a context manager; Chromium and its fresh profile are gone after it.
    """

    def __init__(self, url: str, width: int = 1400, height: int = 900) -> None:
        self._profile = tempfile.TemporaryDirectory()
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:  # Chromium reads commands on fd 3 and writes replies on fd 4
            read, write = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w))
            os.dup2(read, 3)
            os.dup2(write, 4)
            os.close(read)
            os.close(write)

        self._browser = subprocess.Popen(
            [ensure_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}", f"--window-size={width},{height}",
             "--remote-debugging-pipe", "about:blank"],
            preexec_fn=wire_fds, close_fds=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._last_id, self._unread = 0, b""
        try:
            target = self.call("Target.createTarget", {"url": url})["targetId"]
            self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        except BaseException:
            self.__exit__()
            raise

    def __enter__(self) -> Page:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call("Browser.close", timeout=10)
            self._browser.wait(timeout=10)
        except (OSError, RuntimeError, TimeoutError, subprocess.TimeoutExpired):
            self._browser.kill()
            self._browser.wait(timeout=10)
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)
            self._profile.cleanup()

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        """Send one protocol command and return its result (events that arrive meanwhile are dropped)."""
        self._last_id += 1
        message = {"id": self._last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._unread:
                raw, self._unread = self._unread.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._last_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error'].get('message')}")
                    return reply["result"]
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer {method} within {timeout:.0f} s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited during {method}")
            self._unread += chunk

    def visible_text(self) -> list[Text]:
        result = self.call("Runtime.evaluate", {"expression": _VISIBLE_TEXT_JS, "returnByValue": True}, self._session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"the page's script failed: {result['exceptionDetails'].get('text')}")
        return [Text(text, left, middle) for text, left, middle in result["result"]["value"]]

    def wait_for(self, shows: Callable[[list[Text]], Any], timeout: float = 90) -> list[Text]:
        """The visible text, once `shows(text)` is true; an AssertionError with what was on screen after `timeout`."""
        deadline, seen = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            try:
                seen = self.visible_text()
            except RuntimeError:  # the page is still loading (no document to evaluate in yet)
                seen = []
            if shows(seen):
                return seen
            time.sleep(0.5)
        raise AssertionError(f"not shown within {timeout:.0f} s; on screen: {[t.text for t in seen]}")


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
