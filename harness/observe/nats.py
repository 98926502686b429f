"""NATS's monitoring endpoints: the stream's and the consumer's state (/jsz) and each server's own memory
and connections (/varz). In a cluster every node is asked and the stream's leader's word is taken (a
follower's copy may lag); a node that does not answer is skipped, so a crash of one does not blind it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from harness import shape
from harness.topology.nats_cluster import JSZ_QUERY, StreamView, meta_leader, stream_view
from harness.topology.system import System


async def all_jsz(http: httpx.AsyncClient, sut: System) -> dict[str, dict[str, Any] | None]:
    """Each NATS node's /jsz (streams and consumers), asked once a round for every sample that reads it;
    None for a node that does not answer."""

    async def ask(url: str) -> dict[str, Any] | None:
        try:
            return (await http.get(f"{url}{JSZ_QUERY}", timeout=1.0)).json()
        except (httpx.HTTPError, ValueError, RecursionError):
            return None

    urls = sut.nats_monitor_urls
    return dict(zip(urls, await asyncio.gather(*(ask(u) for u in urls.values())), strict=True))


def _pick(views: list[tuple[str, StreamView | None]]) -> StreamView | None:
    """The stream leader's view when it answered, else the first answer (a single server has no leader)."""
    answered = [(node, view) for node, view in views if view is not None]
    for node, view in answered:
        if view.leader == node:
            return view
    return answered[0][1] if answered else None


def jetstream_fields(answers: dict[str, dict[str, Any] | None], stream: str = shape.STREAM) -> dict | None:
    """The stream's and the consumer's state from the nodes' /jsz (the stream leader's word)."""
    view = _pick([(n, stream_view(jsz, stream) if jsz else None) for n, jsz in answers.items()])
    if view is None:
        return None
    state = view.detail.get("state", {})
    out = {"stream_msgs": state.get("messages", 0), "stream_bytes": state.get("bytes", 0)}
    for c in view.detail.get("consumer_detail") or []:
        if c.get("name") == shape.CONSUMER:
            out["consumer_num_pending"] = c.get("num_pending", 0)
            out["consumer_num_ack_pending"] = c.get("num_ack_pending", 0)
    return out


async def jetstream_sample(http: httpx.AsyncClient, sut: System, stream: str = shape.STREAM) -> dict | None:
    return jetstream_fields(await all_jsz(http, sut), stream)


async def server_sample(http: httpx.AsyncClient, sut: System, node: str = "nats") -> dict[str, Any] | None:
    """The NATS node's resident memory (varz `mem`) and client connections."""
    try:
        varz = (await http.get(f"{sut.nats_monitor_urls[node]}/varz", timeout=1.0)).json()
    except (httpx.HTTPError, ValueError, RecursionError):
        return None
    out = {}
    if isinstance(varz.get("mem"), int | float):
        out["rss_bytes"] = int(varz["mem"])
    if isinstance(varz.get("connections"), int):
        out["connections"] = varz["connections"]
    return out or None


def cluster_fields(jsz: dict[str, Any], node: str, stream: str = shape.STREAM) -> dict[str, Any]:
    """What `node` of a cluster says of it (docs/run-format.md, samples): the stream's leader and the
    JetStream meta leader as it knows them, and, from the leader only, its other replicas current and
    lagging (a follower reports its peers not current all the time: it does not track them); a field
    the node does not know is left out."""
    out: dict[str, Any] = {}
    if (meta := meta_leader(jsz)) is not None:
        out["meta_leader"] = meta
    view = stream_view(jsz, stream)
    if view is not None:
        if view.leader is not None:
            out["stream_leader"] = view.leader
        if view.leader == node:
            out["replicas_current"] = sorted(n for n, current in view.replicas.items() if current)
            out["replicas_lagging"] = view.lagging
    return out
