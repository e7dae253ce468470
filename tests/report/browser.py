"""Open a page in headless Chromium and report what a person would see: console errors, uncaught exceptions,
network requests, the page's chart boxes and a screenshot.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages ending in
NUL, commands on its fd 3, replies on its fd 4), which needs no websocket client and no open port.

    python3 tests/report/browser.py PAGE.html SHOT.png    # prints the findings, writes the screenshot
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
                  "--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--disable-dev-shm-usage",
                  "--remote-debugging-pipe"]

# Waits until every plotly chart has drawn its SVG, then returns the page size and, per chart, its box and the
# box of its plotting area (where the data is drawn, inside the axes).
_CHART_BOXES = """
new Promise((resolve, reject) => {
  const started = Date.now();
  const box = (e) => { const r = e.getBoundingClientRect();
                       return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; };
  const poll = () => {
    const plots = [...document.querySelectorAll('.js-plotly-plot')];
    if (plots.every(p => p.querySelector('.main-svg'))) {
      resolve(JSON.stringify({
        width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight,
        charts: plots.map(p => ({id: p.id, box: box(p),
                                 plot: [...p.querySelectorAll('.nsewdrag')].map(box)}))}));
    } else if (Date.now() - started > 15000) { reject(new Error('plotly charts did not draw in 15 s')); }
    else { setTimeout(poll, 50); }
  };
  poll();
})
"""


def find_chromium() -> Optional[str]:
    """The Chromium executable on PATH, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageView:
    errors: List[str] = field(default_factory=list)
    """Console errors, uncaught exceptions and error log entries."""
    requests: List[str] = field(default_factory=list)
    """Every URL the page asked for."""
    width: int = 0
    height: int = 0
    charts: List[Dict] = field(default_factory=list)
    """Per chart: id, box {x, y, width, height} in page pixels, plot: the boxes of its plotting areas."""
    screenshot: bytes = b""
    """PNG of the whole page."""


class _Pipe:
    def __init__(self, process: subprocess.Popen, send_fd: int, receive_fd: int):
        self.process, self.send_fd, self.receive_fd = process, send_fd, receive_fd
        self.buffer = b""
        self.next_id = 0
        self.events: List[Dict] = []

    def call(self, method: str, params: Optional[Dict] = None, session: Optional[str] = None,
             timeout_s: float = 30.0) -> Dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.send_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self._receive(deadline, method)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str, timeout_s: float = 30.0) -> Dict:
        deadline = time.monotonic() + timeout_s
        while True:
            for i, seen in enumerate(self.events):
                if seen.get("method") == event:
                    return self.events.pop(i)
            self.events.append(self._receive(deadline, event))

    def _receive(self, deadline: float, waiting_for: str) -> Dict:
        import select

        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"Chromium did not answer {waiting_for} in time")
            ready, _, _ = select.select([self.receive_fd], [], [], left)
            if ready:
                chunk = os.read(self.receive_fd, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium exited (code {self.process.poll()}) while waiting for {waiting_for}")
                self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)


def view_page(page: Path, width: int = 1400, height: int = 900, chromium: Optional[str] = None) -> PageView:
    """Load ``page`` (a local file) in a fresh headless Chromium profile; wait for its charts to draw; return
    the errors, requests, chart boxes and a full-page screenshot."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no chromium on PATH (scripts/install.sh installs Debian's package)")
    profile = tempfile.mkdtemp(prefix="kernelarena-chromium-")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    # The protocol pipe must be the browser's fds 3 and 4; the shell moves the child's ends there. They are
    # first put above 9 so that moving one onto 3 or 4 cannot close the other.
    for fd in (to_browser_r, from_browser_w):
        high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
        os.close(fd)
        if fd == to_browser_r:
            to_browser_r = high
        else:
            from_browser_w = high
    command = (f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-')
    process = subprocess.Popen(["bash", "-c", command, chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                f"--window-size={width},{height}"],
                               pass_fds=(to_browser_r, from_browser_w), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    os.close(to_browser_r)
    os.close(from_browser_w)
    pipe = _Pipe(process, to_browser_w, from_browser_r)
    view = PageView()
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.call(f"{domain}.enable", session=session)
        pipe.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)
        pipe.call("Page.navigate", {"url": Path(page).resolve().as_uri()}, session=session)
        pipe.wait_for("Page.loadEventFired")
        result = pipe.call("Runtime.evaluate", {"expression": _CHART_BOXES, "awaitPromise": True,
                                                "returnByValue": True}, session=session)
        if "exceptionDetails" in result:
            view.errors.append(f"waiting for the charts: {result['exceptionDetails'].get('exception', {})}")
        else:
            boxes = json.loads(result["result"]["value"])
            view.width, view.height, view.charts = boxes["width"], boxes["height"], boxes["charts"]
        shot = pipe.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": max(view.width, width), "height": max(view.height, height), "scale": 1}},
            session=session)
        view.screenshot = base64.b64decode(shot["data"])
        _collect(pipe.events, view)
        pipe.call("Browser.close")
    finally:
        os.close(to_browser_w)
        os.close(from_browser_r)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return view


def _collect(events: List[Dict], view: PageView) -> None:
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            view.errors.append(f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            view.errors.append("console.error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                             for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            view.errors.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        elif method == "Network.requestWillBeSent":
            view.requests.append(params["request"]["url"])


if __name__ == "__main__":
    found = view_page(Path(sys.argv[1]))
    Path(sys.argv[2]).write_bytes(found.screenshot)
    print(json.dumps({"errors": found.errors, "requests": found.requests, "size": [found.width, found.height],
                      "charts": len(found.charts)}, indent=2))
