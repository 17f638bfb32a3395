"""A minimal headless-Chromium driver over the DevTools protocol (``--remote-debugging-pipe``).

Used by the browser test of the report: open a page, collect console messages, exceptions and
network requests, evaluate JavaScript, take screenshots. No extra dependency: the protocol runs on
two pipes (fds 3 and 4 of the browser), one JSON message per NUL-terminated frame.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


def find_chromium() -> str | None:
    """Path of a Chromium binary on PATH, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """One headless browser with one page, driven synchronously.

    ``events`` keeps every protocol event received (method, params) for inspection.
    """

    def __init__(self, binary: str, width: int = 1200, height: int = 900, timeout_s: float = 30.0):
        self.timeout_s = timeout_s
        self.profile_dir = tempfile.mkdtemp(prefix="simlat-chromium-")
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        # keep the child's ends clear of 3 and 4 so the dup2 below cannot clobber one with the other
        child_in = _high_fd(to_r)
        child_out = _high_fd(from_w)
        os.close(to_r)
        os.close(from_w)

        def wire():
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile_dir}", f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=wire,
            # Python's own fds are non-inheritable (PEP 446); only the dup2'd 3 and 4 reach chromium
            close_fds=False,
        )
        os.close(child_in)
        os.close(child_out)
        self._w = to_w
        self._r = from_r
        self._buf = b""
        self._next_id = 0
        self.events: list[tuple[str, dict]] = []
        self.session: str | None = None
        self._attach()

    # -- protocol ---------------------------------------------------------------------------

    def send(self, method: str, params: dict | None = None, *, session: bool = True) -> dict:
        """Send one command and wait for its answer (events received meanwhile are kept)."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append((reply["method"], reply.get("params", {})))

    def wait_event(self, method: str, timeout_s: float | None = None) -> dict:
        """Wait for the next event named ``method`` (or return one already received and not consumed)."""
        for _i, (m, p) in enumerate(self.events):
            if m == method and not p.get("_seen"):
                p["_seen"] = True
                return p
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            msg = self._read(deadline)
            if "method" in msg:
                params = msg.get("params", {})
                self.events.append((msg["method"], params))
                if msg["method"] == method:
                    params["_seen"] = True
                    return params

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium within the time limit")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe: " + self._stderr_tail())
                self._buf += chunk
        frame, self._buf = self._buf.split(b"\0", 1)
        return json.loads(frame)

    def _attach(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            targets = self.send("Target.getTargets", session=False)["targetInfos"]
            pages = [t for t in targets if t["type"] == "page"]
            if pages:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("chromium opened no page")
            time.sleep(0.05)
        self.session = self.send("Target.attachToTarget", {"targetId": pages[0]["targetId"], "flatten": True}, session=False)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    # -- page helpers -----------------------------------------------------------------------

    def open(self, url: str) -> None:
        """Navigate and wait for the page's load event."""
        for method, params in self.events:  # earlier load events belong to earlier pages
            if method == "Page.loadEventFired":
                params["_seen"] = True
        res = self.send("Page.navigate", {"url": url})
        if res.get("errorText"):
            raise RuntimeError(f"could not open {url}: {res['errorText']}")
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression (promises awaited)."""
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in res:
            raise RuntimeError(f"JavaScript error: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path: Path, clip: dict | None = None, full_page: bool = False) -> Path:
        """PNG of the viewport, a clip {x, y, width, height} or the whole page."""
        params: dict = {"format": "png"}
        if full_page:
            size = self.evaluate("({w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight})")
            clip = {"x": 0, "y": 0, "width": size["w"], "height": size["h"]}
            params["captureBeyondViewport"] = True
        if clip:
            params["clip"] = {**clip, "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", params)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen so far."""
        out = []
        for method, p in self.events:
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console." + p["type"] + ": " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("exception: " + str(d.get("exception", {}).get("description", d.get("text"))))
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + p["entry"].get("text", "") + " " + p["entry"].get("url", ""))
        return out

    def console_warnings(self) -> list[str]:
        """Console warnings seen so far (Vega reports data problems as warnings)."""
        return [
            " ".join(str(a.get("value", "")) for a in p.get("args", []))
            for m, p in self.events
            if m == "Runtime.consoleAPICalled" and p.get("type") == "warning"
        ]

    def requested_urls(self) -> list[str]:
        """Every URL the page asked the network stack for."""
        return [p["request"]["url"] for m, p in self.events if m == "Network.requestWillBeSent"]

    def _stderr_tail(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace")[-2000:]

    def close(self) -> None:
        """Close the browser, wait for it and remove its profile folder."""
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", session=False)
                except (RuntimeError, TimeoutError, OSError):
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for fd in (self._w, self._r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            if self.proc.stderr:
                self.proc.stderr.close()
            shutil.rmtree(self.profile_dir, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _high_fd(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
