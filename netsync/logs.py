"""Structured logs: one JSON object per line on stdout, carrying the cid when there is one."""

from __future__ import annotations

import json
import sys
import time
from typing import Any


class Log:
    def __init__(self, node: str, stream: Any = None) -> None:
        self.node = node
        self.stream = stream or sys.stdout

    def _emit(self, level: str, msg: str, cid: str | None, fields: dict[str, Any]) -> None:
        rec: dict[str, Any] = {"t": round(time.time(), 6), "level": level, "node": self.node, "msg": msg}
        if cid is not None:
            rec["cid"] = cid
        rec.update(fields)
        self.stream.write(json.dumps(rec, default=str) + "\n")
        self.stream.flush()

    def info(self, msg: str, cid: str | None = None, **fields: Any) -> None:
        self._emit("info", msg, cid, fields)

    def warning(self, msg: str, cid: str | None = None, **fields: Any) -> None:
        self._emit("warning", msg, cid, fields)

    def error(self, msg: str, cid: str | None = None, **fields: Any) -> None:
        self._emit("error", msg, cid, fields)
