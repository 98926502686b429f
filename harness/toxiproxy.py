"""A small typed async client for Toxiproxy's REST API (port 8474).

toxiproxy-python (0.1.1, 2019) is synchronous, untyped and predates toxics such as
reset_peer; the API is a handful of JSON endpoints, so the harness speaks it directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from harness import http1
from harness.errors import HarnessError
from harness.http1 import Pool

Stream = Literal["upstream", "downstream"]
TOXIC_TYPES = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data")


class ToxiproxyError(HarnessError):
    pass


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: Stream = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.attributes,
        }


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool = True
    toxics: tuple[Toxic, ...] = ()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Proxy:
        return cls(
            name=d["name"],
            listen=d["listen"],
            upstream=d["upstream"],
            enabled=d.get("enabled", True),
            toxics=tuple(
                Toxic(
                    t["name"],
                    t["type"],
                    t.get("stream", "downstream"),
                    t.get("toxicity", 1.0),
                    t.get("attributes", {}),
                )
                for t in d.get("toxics") or []
            ),
        )


class Toxiproxy:
    """`async with Toxiproxy("http://127.0.0.1:8474") as tp: ...`"""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        # harness.http1, not httpx: a fault's many calls at once cost the event loop little (see there).
        self._http = Pool(self.base_url, timeout=timeout)

    async def __aenter__(self) -> Toxiproxy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        try:
            status, answer = await self._http.request(method, path, data)
        except http1.ERRORS as e:
            why = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            raise ToxiproxyError(f"Toxiproxy at {self.base_url} did not answer {method} {path}: {why}") from e
        if status >= 400:
            text = answer.decode(errors="replace").strip()
            raise ToxiproxyError(f"Toxiproxy {method} {path} -> {status}: {text}")
        try:
            return json.loads(answer) if answer else None
        except (ValueError, RecursionError) as e:  # what answers is a container: trust no shape
            raise ToxiproxyError(f"Toxiproxy {method} {path} -> {status}: not JSON ({e})") from e

    async def proxies(self) -> dict[str, Proxy]:
        data = await self._call("GET", "/proxies")
        return {name: Proxy.from_json(p) for name, p in data.items()}

    async def create(self, name: str, listen: str, upstream: str, enabled: bool = True) -> Proxy:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return Proxy.from_json(await self._call("POST", "/proxies", body))

    async def delete(self, name: str) -> None:
        await self._call("DELETE", f"/proxies/{name}")

    async def populate(self, proxies: list[tuple[str, str, str]]) -> list[Proxy]:
        """Create or replace many proxies at once: (name, listen, upstream)."""
        body = [{"name": n, "listen": li, "upstream": u, "enabled": True} for n, li, u in proxies]
        data = await self._call("POST", "/populate", body)
        return [Proxy.from_json(p) for p in data["proxies"]]

    async def set_enabled(self, name: str, enabled: bool) -> Proxy:
        return Proxy.from_json(await self._call("POST", f"/proxies/{name}", {"enabled": enabled}))

    async def add_toxic(self, proxy: str, toxic: Toxic) -> Toxic:
        if toxic.type not in TOXIC_TYPES:
            raise ToxiproxyError(f"unknown toxic type {toxic.type!r}; allowed: {', '.join(TOXIC_TYPES)}")
        d = await self._call("POST", f"/proxies/{proxy}/toxics", toxic.to_json())
        return Toxic(d["name"], d["type"], d["stream"], d["toxicity"], d["attributes"])

    async def remove_toxic(self, proxy: str, toxic: str) -> None:
        await self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}")

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        await self._call("POST", "/reset")
