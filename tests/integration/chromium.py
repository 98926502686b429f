"""Open a page in Debian's headless Chromium and say what a reader would have seen: driven over the
DevTools protocol (a websocket on 127.0.0.1), it records console errors, uncaught exceptions and
every network request, reads values off the loaded page and takes a full-page screenshot."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--remote-debugging-port=0",
)
WIDTH = 1200


@dataclass
class PageVisit:
    load_s: float  # navigation to the load event
    values: dict[str, Any]  # what `probe` returned
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for, itself included


class DevTools:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    async def wait_event(self, method: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events:
                if e.get("method") == method:
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {method} within {timeout} s")
            self.events.append(json.loads(await asyncio.wait_for(self.ws.recv(), left)))


async def _visit(url: str, probe: str, screenshot: Path | None, endpoint: str) -> PageVisit:
    async with websockets.connect(endpoint, max_size=64 * 1024 * 1024) as ws:
        dt = DevTools(ws)
        target = (await dt.call("Target.createTarget", url="about:blank"))["targetId"]
        session = (await dt.call("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            await dt.call(f"{domain}.enable", session)
        await dt.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=WIDTH,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        t0 = time.monotonic()
        await dt.call("Page.navigate", session, url=url)
        await dt.wait_event("Page.loadEventFired", 60)
        load_s = time.monotonic() - t0
        values = (await dt.call("Runtime.evaluate", session, expression=probe, returnByValue=True))["result"]
        height = (
            await dt.call(
                "Runtime.evaluate", session, expression="document.body.scrollHeight", returnByValue=True
            )
        )["result"]["value"]
        if screenshot is not None:
            await dt.call(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=WIDTH,
                height=int(height),
                deviceScaleFactor=1,
                mobile=False,
            )
            shot = await dt.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        visit = PageVisit(load_s, values.get("value") or {})
        for e in dt.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                visit.console_errors.append(json.dumps(p.get("args"))[:300])
            elif method == "Runtime.exceptionThrown":
                visit.console_errors.append(json.dumps(p.get("exceptionDetails"))[:300])
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                visit.console_errors.append(p["entry"].get("text", "")[:300])
            elif method == "Network.requestWillBeSent":
                visit.requests.append(p.get("request", {}).get("url", ""))
        return visit


def open_page(path: Path, probe: str, screenshot: Path | None = None) -> PageVisit:
    """Load file `path` in a fresh headless Chromium (its own user-data-dir), evaluate the JavaScript
    expression `probe` (an object, returned by value) once loaded, and screenshot the whole page."""
    exe = shutil.which("chromium")
    if exe is None:
        raise RuntimeError("chromium is missing: `make setup` installs it (scripts/ensure-tools.sh)")
    with tempfile.TemporaryDirectory(prefix="solar-chaos-chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            endpoint = None
            assert proc.stderr is not None
            deadline = time.monotonic() + 30
            while endpoint is None and time.monotonic() < deadline:
                line = proc.stderr.readline()
                if not line and proc.poll() is not None:
                    break
                if m := re.search(r"DevTools listening on (ws://\S+)", line):
                    endpoint = m.group(1)
            if endpoint is None:
                raise RuntimeError(f"chromium did not open its DevTools endpoint (exit {proc.poll()})")
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep its pipe from filling
            return asyncio.run(_visit(path.resolve().as_uri(), probe, screenshot, endpoint))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
