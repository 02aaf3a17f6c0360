"""A headless Chromium driven over the DevTools protocol on a pipe, for tests of report.html.

No websocket library and no Node: Chromium's `--remote-debugging-pipe` reads commands from
file descriptor 3 and writes replies and events to descriptor 4, each a JSON message ended
by a NUL byte. That is all a test needs to open a page, record every request and console
message, read values from the page and take a screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-pipe"]


def find_chromium() -> str | None:
    """The Chromium to use: $GCM_FUND_CHROMIUM, else the first on PATH."""
    chosen = os.environ.get("GCM_FUND_CHROMIUM")
    if chosen:
        return chosen
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _high_fd(fd: int) -> int:
    # Move a pipe end above 4, so that moving it onto 3 or 4 in the child clobbers nothing.
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


@dataclass
class PageLog:
    """What a page did while it was open."""

    requests: list[str] = field(default_factory=list)
    console: list[tuple[str, str]] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads, as lines of text."""
        return ([f"console.{kind}: {text}" for kind, text in self.console
                 if kind in {"error", "assert"}]
                + [f"exception: {text}" for text in self.exceptions]
                + [f"failed: {text}" for text in self.failed])


class Browser:
    """One headless Chromium with one page, closed on exit."""

    def __init__(self, executable: str, profile: Path, width: int = 1280, height: int = 900,
                 timeout: float = 60.0) -> None:
        self.timeout = timeout
        to_child_read, to_child_write = (_high_fd(fd) for fd in os.pipe())
        from_child_read, from_child_write = (_high_fd(fd) for fd in os.pipe())

        def wire() -> None:
            os.dup2(to_child_read, 3)
            os.dup2(from_child_write, 4)

        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}",
             f"--window-size={width},{height}", "about:blank"],
            preexec_fn=wire, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_read)
        os.close(from_child_write)
        self._out, self._in = to_child_write, from_child_read
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None
        self.log = PageLog()

    def __enter__(self) -> Browser:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        return self

    def __exit__(self, *exc: object) -> None:
        # Closing a browser that already went away is not an error.
        with contextlib.suppress(Exception):
            self.call("Browser.close", session=False)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._out)
        os.close(self._in)

    # ------------------------------------------------------------ protocol
    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._out, data):]

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError("no reply from Chromium")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise ConnectionError("Chromium closed its pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        found: dict[str, Any] = json.loads(message)
        if "method" in found:
            self._record(found)
        return found

    def call(self, method: str, session: bool = True, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its reply (recording events meanwhile)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session and self.session:
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def _record(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        method, params = event["method"], event.get("params", {})
        if method == "Network.requestWillBeSent":
            self.log.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed":
            self.log.failed.append(f"{params.get('errorText')} ({params.get('type')})")
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", "")))
                            for a in params.get("args", []))
            self.log.console.append((params.get("type", ""), text))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.log.exceptions.append(
                details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                self.log.console.append(("error", f"{entry.get('source')}: "
                                                  f"{entry.get('text')} {entry.get('url', '')}"))

    def wait_for(self, method: str, seconds: float | None = None) -> dict[str, Any]:
        """Wait for an event (already received or still to come)."""
        for event in self.events:
            if event["method"] == method:
                return event
        deadline = time.monotonic() + (seconds or self.timeout)
        while True:
            event = self._receive(deadline)
            if event.get("method") == method:
                return event

    # ------------------------------------------------------------ page
    def open(self, url: str) -> float:
        """Load `url`; the seconds until its load event."""
        started = time.monotonic()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        return time.monotonic() - started

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                          awaitPromise=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait_until(self, expression: str, seconds: float = 60.0) -> float:
        """Poll until a JavaScript expression is true; the seconds it took."""
        started = time.monotonic()
        while not self.evaluate(expression):
            if time.monotonic() - started > seconds:
                raise TimeoutError(f"still false after {seconds} s: {expression}")
            time.sleep(0.05)
        return time.monotonic() - started

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """A PNG of the page (the whole height when `full_page`)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"],
                              "height": size["height"], "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path
