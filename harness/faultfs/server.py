"""The daemon's side of the control socket (one JSON object a line in, one a line out) and
the watch that ends the daemon when its parent dies. Python's signal handlers do not run
while libfuse's loop holds the main thread, so commands come over a socket."""

from __future__ import annotations

import json
import os
import signal
import socketserver
import threading
import time
from typing import Any

from harness.faultfs.volume import Volume

PROTOCOL = 1


def dispatch(volume: Volume, req: dict[str, Any]) -> dict[str, Any]:
    """One command: {"cmd": "lose"} -> {"ok": true, ...}; a bad one -> {"ok": false, "error"}."""
    cmd = req.get("cmd")
    prefix = str(req.get("prefix", "/"))
    try:
        if cmd == "ping":
            return {"ok": True, "pid": os.getpid(), "protocol": PROTOCOL}
        if cmd == "lose":
            return {"ok": True, **volume.lose()}
        if cmd == "fail":
            volume.faults.fail(str(req.get("op", "all")), prefix)
        elif cmd == "full":
            volume.faults.full(prefix)
        elif cmd == "slow":
            volume.faults.slow(int(req["ms"]), prefix)
        elif cmd == "clear":
            volume.faults.clear()
        elif cmd == "stats":
            return {"ok": True, **volume.stats()}
        else:
            return {"ok": False, "error": f"unknown cmd {cmd!r}: ping, lose, fail, full, slow, clear, stats"}
    except (ValueError, KeyError, TypeError) as e:
        return {"ok": False, "error": f"{cmd}: {e!r}"}
    return {"ok": True, "active": volume.faults.active()}


class ControlServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, volume: Volume) -> None:
        self.volume = volume
        if os.path.exists(path):
            os.unlink(path)  # a dead daemon's socket; the path is ours
        super().__init__(path, _Handler)
        os.chmod(path, 0o600)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="faultfs-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
        self.server_close()
        if os.path.exists(self.server_address):  # type: ignore[arg-type]
            os.unlink(self.server_address)  # type: ignore[arg-type]


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            if not line.strip():
                continue
            try:
                req = json.loads(line)
                if not isinstance(req, dict):
                    raise ValueError("a command is a JSON object")
                resp = dispatch(self.server.volume, req)  # type: ignore[attr-defined]
            except ValueError as e:
                resp = {"ok": False, "error": f"bad request: {e}"}
            self.wfile.write(json.dumps(resp).encode() + b"\n")
            self.wfile.flush()


def watch_parent(parent: int, interval: float = 0.2) -> threading.Thread:
    """End the daemon (SIGTERM to itself: libfuse's handler leaves the loop and unmounts)
    once `parent` is gone. Polling, not PR_SET_PDEATHSIG: that signal fires when the
    *thread* that forked us ends, and the harness may start the daemon from a worker thread."""

    def run() -> None:
        while os.getppid() == parent:
            time.sleep(interval)  # polling a pid has no event to wait on
        os.kill(os.getpid(), signal.SIGTERM)

    t = threading.Thread(target=run, name="faultfs-parent-watch", daemon=True)
    t.start()
    return t
