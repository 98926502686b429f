"""What NATS's monitoring endpoint (/jsz) says about the cluster and the stream: the meta leader, the
stream's leader and its replicas, and whether all of that is ready. Pure functions of one node's answer,
so readiness (topology.system), samples (observe.nats) and tests read it the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from harness import shape
from harness.errors import TopologyError
from harness.waiting import WaitTimeout, wait_until

JSZ_QUERY = "/jsz?streams=true&consumers=true"


@dataclass(frozen=True)
class StreamView:
    """The stream as one node reports it."""

    detail: dict[str, Any]  # the stream's entry of the node's /jsz (state, consumer_detail, cluster)
    leader: str | None  # the stream's leader, as that node knows it; None: no leader (or a single server)
    replicas: dict[str, bool]  # each other replica's name -> current

    @property
    def lagging(self) -> list[str]:
        return sorted(name for name, current in self.replicas.items() if not current)


def meta_leader(jsz: dict[str, Any]) -> str | None:
    """The JetStream meta leader the node knows; None: none elected (or a single server, which has none)."""
    meta = jsz.get("meta_cluster") or {}
    return meta.get("leader") or None


def stream_view(jsz: dict[str, Any], stream: str) -> StreamView | None:
    """The stream as the node reports it; None when the node holds no replica of it."""
    for account in jsz.get("account_details") or []:
        for detail in account.get("stream_detail") or []:
            if detail.get("name") != stream:
                continue
            cluster = detail.get("cluster") or {}
            replicas = {r.get("name", "?"): bool(r.get("current")) for r in cluster.get("replicas") or []}
            return StreamView(detail, cluster.get("leader") or None, replicas)
    return None


def cluster_problem(jsz: dict[str, Any], stream: str, replicas: int) -> str | None:
    """What keeps the cluster from taking intents, as the node answering `jsz` sees it; None: a meta leader,
    and the stream with a leader and its `replicas` - 1 other replicas all current."""
    if meta_leader(jsz) is None:
        return "no JetStream meta leader"
    view = stream_view(jsz, stream)
    if view is None:
        return f"no stream {stream}"
    if view.leader is None:
        return f"stream {stream} has no leader"
    if len(view.replicas) != replicas - 1:
        return f"stream {stream} has {len(view.replicas) + 1} replicas, not {replicas}"
    if view.lagging:
        return f"stream {stream}'s replicas {', '.join(view.lagging)} not current"
    return None


def wait_cluster_ready(monitor_urls: dict[str, str], replicas: int, timeout: float = 60.0) -> None:
    """Until a NATS node that leads the stream reports no `cluster_problem`; `monitor_urls`: node name
    (its server_name) -> its monitoring endpoint. The error says what each node said last."""
    seen: dict[str, str] = {}

    def probe() -> bool:
        for node, url in monitor_urls.items():
            try:
                jsz = httpx.get(f"{url}{JSZ_QUERY}", timeout=1.0).json()
            except (httpx.HTTPError, ValueError) as e:
                seen[node] = f"no answer ({type(e).__name__})"
                continue
            problem = cluster_problem(jsz, shape.STREAM, replicas)
            view = stream_view(jsz, shape.STREAM)
            seen[node] = problem or f"ready, stream leader {view.leader if view else None}"
            if problem is None and view is not None and view.leader == node:
                return True
        return False

    try:
        wait_until(
            probe,
            f"stream {shape.STREAM} led with its {replicas} replicas current",
            timeout=timeout,
            interval=0.2,
        )
    except WaitTimeout as e:
        said = "; ".join(f"{node}: {what}" for node, what in seen.items())
        raise TopologyError(f"{e} (each NATS node said: {said})") from e
