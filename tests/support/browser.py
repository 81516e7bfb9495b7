"""Debian's headless Chromium, driven over its DevTools protocol (CDP) with `websockets`.

No browser is downloaded: the system's `chromium` (apt) is started with an empty profile and
a random debugging port, and the page's own JavaScript is asked what it shows.
"""
from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from websockets.sync.client import connect

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1000")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, url: str, timeout: float = 30.0, environment: dict[str, str] | None = None):
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        self.process = subprocess.Popen([chromium(), *FLAGS, f"--user-data-dir={self.profile}",
                                         "--remote-debugging-port=0", url],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not open its debugging port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        page = self._page(port, deadline)
        self._connection = ExitStack()
        self.socket = self._connection.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024, open_timeout=timeout))
        self._ids = itertools.count(1)

    def _page(self, port: int, deadline: float) -> dict:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                    pages = [t for t in json.load(response) if t["type"] == "page"]
                if pages:
                    return pages[0]
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chromium shows no page")
            time.sleep(0.1)

    def send(self, method: str, **params) -> dict:
        ident = next(self._ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.event(message)

    def event(self, message: dict) -> None:
        """A DevTools event that arrived while an answer was awaited: dropped here."""

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, show: str = "document.title"):
        """Poll a JavaScript expression until it is truthy; its value. On time-out the error
        says what `show` evaluates to then."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression} ({show}: "
                                   f"{self.evaluate(f'JSON.stringify({show})')})")
            time.sleep(0.2)

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def click(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def key(self, key: str, code: str | None = None, key_code: int | None = None) -> None:
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", type=kind, key=key, code=code or key,
                      windowsVirtualKeyCode=key_code or 0)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        if getattr(self, "_connection", None) is not None:
            self._connection.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
    """A plain GET beside the browser (the page's own API): (status, body, headers), errors included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def drag(browser: Browser, start: tuple[float, float], end: tuple[float, float], steps: int = 5) -> None:
    """Press the left button at `start`, move to `end` in `steps` moves holding it, release it there:
    the pointerdown, pointermove and pointerup events a person's drag sends."""
    (x0, y0), (x1, y1) = start, end
    browser.send("Input.dispatchMouseEvent", type="mousePressed", x=x0, y=y0, button="left", buttons=1, clickCount=1)
    for step in range(1, steps + 1):
        x, y = x0 + (x1 - x0) * step / steps, y0 + (y1 - y0) * step / steps
        browser.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y, button="left", buttons=1)
    browser.send("Input.dispatchMouseEvent", type="mouseReleased", x=x1, y=y1, button="left", buttons=0, clickCount=1)


class NetworkBrowser(Browser):
    """A Browser that also keeps what DevTools' Network domain reports while it waits for its
    answers (`events`), so that a test can see where the page's requests went: each redirect
    and each final response, the media element's included."""

    def __init__(self, *args, **kwargs):
        self.events: list[dict] = []
        super().__init__(*args, **kwargs)
        self.send("Network.enable")

    def event(self, message: dict) -> None:
        if message.get("method", "").startswith("Network."):
            self.events.append(message)

    def responses(self, path: str) -> list[tuple[int, str | None]]:
        """(status, Location) of every response to a URL whose path is `path`, redirects
        included, in the order they arrived."""
        from urllib.parse import urlsplit
        found = []
        for event in self.events:
            params = event["params"]
            if event["method"] == "Network.requestWillBeSent" and "redirectResponse" in params:
                response = params["redirectResponse"]
            elif event["method"] == "Network.responseReceived":
                response = params["response"]
            else:
                continue
            if urlsplit(response["url"]).path == path:
                headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
                found.append((response["status"], headers.get("location")))
        return found
