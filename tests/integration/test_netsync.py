"""netsync end to end as processes on 127.0.0.1: agents, orchestrator and projector against a real
nats-server and SurrealDB, checked against docs/contract.md through HTTP, the stream and the store."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest

from harness.toxiproxy import Toxic, Toxiproxy
from harness.waiting import await_until
from tests.integration.netsync_procs import (
    AGENT_TEST_ENV,
    Cluster,
    NatsServer,
    SurrealServer,
    ToxiproxyServer,
    surreal_rows,
)

STREAM = "SENTIMENT"
SUBJECT = "root.solar.command.sentiment.set"
DEADLINE = 60.0
INTENT_TIMEOUT = int(AGENT_TEST_ENV["NETSYNC_INTENT_TIMEOUT_MS"]) / 1000


# -- servers ---------------------------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


def stop_nats(server: NatsServer) -> None:
    # SIGTERM: an outage of the service, not a test of nats-server's own crash durability.
    server.stop(signal.SIGTERM)


# -- reading the system ------------------------------------------------------------------


async def post(http: httpx.AsyncClient, cluster: Cluster, agent: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await http.post(
        f"{cluster.url(agent)}/intents", content=content, headers={"content-type": "application/json"}
    )


async def intent_state(http: httpx.AsyncClient, cluster: Cluster, agent: str, cid: str) -> dict[str, Any]:
    r = await http.get(f"{cluster.url(agent)}/intents/{cid}")
    assert r.status_code == 200, r.text
    return r.json()


async def health(http: httpx.AsyncClient, cluster: Cluster, name: str) -> dict[str, Any]:
    r = await http.get(f"{cluster.url(name)}/healthz")
    r.raise_for_status()
    return r.json()


async def metrics(http: httpx.AsyncClient, cluster: Cluster, name: str) -> dict[str, float]:
    """The unlabelled samples of `name`'s /metrics."""
    r = await http.get(f"{cluster.url(name)}/metrics")
    assert r.status_code == 200
    out = {}
    for line in r.text.splitlines():
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


async def stream_messages(nats_url: str) -> list[Any]:
    """Every message in the stream, read directly from NATS (never through a proxy)."""
    nc = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=5)
        state = (await js.stream_info(STREAM)).state
        if state.messages == 0:
            return []
        return [await js.get_msg(STREAM, seq) for seq in range(state.first_seq, state.last_seq + 1)]
    finally:
        await nc.close()


async def assert_stream_once(nats_url: str, expected: dict[str, tuple[str, int]]) -> dict[str, int]:
    """Each expected cid is in the stream exactly once, with its key and value, its headers
    Nats-Msg-Id and Correlation-Id equal to it, and nothing else is; {cid: stream seq}."""
    msgs = await stream_messages(nats_url)
    counts = Counter(json.loads(m.data)["cid"] for m in msgs)
    assert {c: n for c, n in counts.items() if n != 1} == {}, "a cid stored more than once"
    assert set(counts) == set(expected)
    seqs = {}
    for m in msgs:
        body = json.loads(m.data)
        cid = body["cid"]
        assert m.subject == SUBJECT
        assert m.headers["Nats-Msg-Id"] == cid and m.headers["Correlation-Id"] == cid
        assert (body["key"], body["value"]) == expected[cid]
        seqs[cid] = m.seq
    return seqs


async def stream_cids(nats_url: str) -> Counter[str]:
    return Counter(json.loads(m.data)["cid"] for m in await stream_messages(nats_url))


async def assert_projected(
    http: httpx.AsyncClient,
    cluster: Cluster,
    surreal: SurrealServer,
    expected: dict[str, tuple[str, int]],
    seqs: dict[str, int],
) -> None:
    """SurrealDB holds exactly one row per committed cid, with its key, value and stream seq."""
    last = max(seqs.values())

    async def caught_up() -> bool:
        return (await health(http, cluster, "projector"))["last_seq"] >= last

    # Waiting on the projector's healthz, not by polling SurrealDB (a reader racing its
    # first DEFINE costs it a retried write).
    await await_until(caught_up, f"the projector to reach seq {last}", timeout=DEADLINE)
    rows = await surreal_rows(surreal)
    assert set(rows) == set(expected)
    for cid, (key, value) in expected.items():
        row = rows[cid]
        assert (row["key"], row["value"], row["stream_seq"]) == (key, value, seqs[cid])


async def buffers_empty(http: httpx.AsyncClient, cluster: Cluster, names: list[str]) -> bool:
    depths = [(await health(http, cluster, n))["buffer_depth"] for n in names]
    return all(d == 0 for d in depths)


# -- the tests ---------------------------------------------------------------------------


async def test_healthy_cluster_commits_each_intent_once(tmp_path, nats_server, surreal_server, http) -> None:
    with Cluster(tmp_path, nats_server, 3, surreal=surreal_server) as cluster:
        expected = {f"healthy-{i:02d}": (f"key-{i % 4}", i * 7 - 30) for i in range(20)}
        answers: dict[str, dict[str, Any]] = {}

        async def send(agent: str, cids: list[str]) -> None:
            for cid in cids:  # one after another per agent, the three agents at once
                key, value = expected[cid]
                r = await post(http, cluster, agent, {"key": key, "value": value, "cid": cid})
                assert r.status_code == 200, r.text
                answers[cid] = r.json()

        cids = list(expected)
        await asyncio.gather(*(send(a, cids[i::3]) for i, a in enumerate(cluster.names)))

        for cid, ans in answers.items():
            assert ans["cid"] == cid and ans["outcome"] == "committed"
            assert isinstance(ans["stream_seq"], int) and ans["quorum_ms"] >= 0
        seqs = await assert_stream_once(nats_server.url, expected)
        assert seqs == {cid: ans["stream_seq"] for cid, ans in answers.items()}
        await assert_projected(http, cluster, surreal_server, expected, seqs)


async def test_bad_bodies_and_repeated_cid(tmp_path, nats_server, http) -> None:
    with Cluster(tmp_path, nats_server, 3) as cluster:
        bad: list[tuple[Any, str]] = [
            (b"this is not json", "body"),
            (b"[1, 2]", "body"),
            ({"value": 1}, "key"),
            ({"key": "", "value": 1}, "key"),
            ({"key": "k" * 129, "value": 1}, "key"),
            ({"key": "k", "value": "5"}, "value"),
            ({"key": "k", "value": True}, "value"),
            ({"key": "k", "value": 1.5}, "value"),
            ({"key": "k", "value": 1, "cid": "no spaces allowed"}, "cid"),
            ({"key": "k", "value": 1, "cid": "c" * 65}, "cid"),
            ({"key": "k", "value": 1, "cid": 7}, "cid"),
            ({"key": "k", "value": 1, "colour": "red"}, "colour"),
        ]
        for body, field in bad:
            r = await post(http, cluster, "agent-1", body)
            assert r.status_code == 400, (body, r.text)
            got = r.json()
            assert got["field"] == field, (body, got)
            assert got["error"]

        first = await post(http, cluster, "agent-1", {"key": "k", "value": 3, "cid": "repeat-1"})
        assert first.status_code == 200, first.text
        seq = first.json()["stream_seq"]
        # The same cid again, even with another value: the first answer, not a second intent.
        for value in (3, 4):
            body = {"key": "k", "value": value, "cid": "repeat-1"}
            again = await post(http, cluster, "agent-1", body)
            assert (again.status_code, again.json()) == (200, first.json())
        assert await intent_state(http, cluster, "agent-1", "repeat-1") == {
            "cid": "repeat-1",
            "state": "committed",
            "stream_seq": seq,
        }
        assert (await http.get(f"{cluster.url('agent-1')}/intents/never-seen")).status_code == 404
        # Nothing from the bad bodies, and the repeated cid once.
        assert await assert_stream_once(nats_server.url, {"repeat-1": ("k", 3)}) == {"repeat-1": seq}


async def test_nats_outage_buffers_then_drains(tmp_path, nats_server, surreal_server, http) -> None:
    with Cluster(tmp_path, nats_server, 3, surreal=surreal_server) as cluster:
        expected = {"before-0": ("k", 1)}
        r = await post(http, cluster, "agent-1", {"key": "k", "value": 1, "cid": "before-0"})
        assert r.status_code == 200, r.text

        stop_nats(nats_server)
        await asyncio.to_thread(cluster.wait_orchestrator_nats, False)
        outage = {f"outage-{i}": (f"key-{i % 3}", 10 + i) for i in range(6)}
        expected |= outage
        at = {cid: cluster.names[i % 3] for i, cid in enumerate(outage)}
        for cid, (key, value) in outage.items():
            r = await post(http, cluster, at[cid], {"key": key, "value": value, "cid": cid})
            assert r.status_code == 202, r.text
            assert r.json()["outcome"] == "pending-commit" and r.json()["cid"] == cid
        for cid in outage:
            assert await intent_state(http, cluster, at[cid], cid) == {"cid": cid, "state": "pending-commit"}
        for name in cluster.names:
            m = await metrics(http, cluster, name)
            assert m["netsync_buffer_depth"] == 2 and m["netsync_pending_commit"] == 2, (name, m)
        again = await post(http, cluster, "agent-1", {"key": "key-0", "value": 10, "cid": "outage-0"})
        assert again.status_code == 202 and again.json()["outcome"] == "pending-commit", again.text

        nats_server.start()  # same ports, same store
        await await_until(
            lambda: buffers_empty(http, cluster, cluster.names), "the buffers to drain", timeout=DEADLINE
        )
        seqs = await assert_stream_once(nats_server.url, expected)
        for cid in outage:
            assert await intent_state(http, cluster, at[cid], cid) == {
                "cid": cid,
                "state": "committed",
                "stream_seq": seqs[cid],
            }
        for name in cluster.names:
            m = await metrics(http, cluster, name)
            assert m["netsync_buffer_depth"] == 0 and m["netsync_pending_commit"] == 0, (name, m)
            # One successful replay per buffered intent, after failed attempts during the outage.
            assert m["netsync_replays_total"] == 2 and m["netsync_replay_failures_total"] > 0, (name, m)
            assert m["netsync_nats_reachable"] == 1, (name, m)
        # A repeated POST answers the state now.
        again = await post(http, cluster, "agent-1", {"key": "key-0", "value": 10, "cid": "outage-0"})
        assert again.status_code == 200, again.text
        assert again.json()["stream_seq"] == seqs["outage-0"]
        await assert_projected(http, cluster, surreal_server, expected, seqs)


async def test_agent_killed_with_a_full_buffer_loses_nothing(tmp_path, nats_server, http) -> None:
    with Cluster(tmp_path, nats_server, 3) as cluster:
        stop_nats(nats_server)
        await asyncio.to_thread(cluster.wait_orchestrator_nats, False)
        expected = {f"killed-{i}": ("k", i) for i in range(5)}
        for cid, (key, value) in expected.items():
            r = await post(http, cluster, "agent-2", {"key": key, "value": value, "cid": cid})
            assert r.status_code == 202, r.text
        assert (await health(http, cluster, "agent-2"))["buffer_depth"] == 5

        cluster.agents["agent-2"].kill()
        await asyncio.to_thread(cluster.restart_agent, "agent-2")
        # Read back from the journal: still pending, the NATS outage goes on.
        assert (await health(http, cluster, "agent-2"))["buffer_depth"] == 5
        for cid in expected:
            state = await intent_state(http, cluster, "agent-2", cid)
            assert state == {"cid": cid, "state": "pending-commit"}
        again = await post(http, cluster, "agent-2", {"key": "k", "value": 0, "cid": "killed-0"})
        assert again.status_code == 202 and again.json()["outcome"] == "pending-commit", again.text

        nats_server.start()
        await await_until(
            lambda: buffers_empty(http, cluster, ["agent-2"]), "agent-2's buffer to drain", timeout=DEADLINE
        )
        seqs = await assert_stream_once(nats_server.url, expected)
        # Decision order survives the restart.
        assert [seqs[cid] for cid in expected] == sorted(seqs.values())
        for cid in expected:
            assert await intent_state(http, cluster, "agent-2", cid) == {
                "cid": cid,
                "state": "committed",
                "stream_seq": seqs[cid],
            }


async def shorten_duplicate_window(nats_url: str, seconds: float) -> None:
    """What an operator may do to a running stream: change its duplicate window."""
    nc = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=5)
        config = (await js.stream_info(STREAM)).config
        config.duplicate_window = seconds
        updated = await js.update_stream(config)
        assert updated.config.duplicate_window == seconds
    finally:
        await nc.close()


@pytest.mark.parametrize("window", ["configured", "changed-by-an-operator"])
async def test_replay_past_the_duplicate_window_is_not_stored_twice(
    tmp_path, nats_server, http, window
) -> None:
    """The 2 s window is either the orchestrator's setting, or set on the stream by an operator
    after the orchestrator started with the default 120 s: the stream's own window counts."""
    with ToxiproxyServer(tmp_path / "toxiproxy") as toxiproxy:
        listen = toxiproxy.create_proxy("orchestrator-nats", f"127.0.0.1:{nats_server.port}")
        cluster = Cluster(
            tmp_path,
            nats_server,
            3,
            orchestrator_env={"NETSYNC_DUPLICATE_WINDOW_S": "2"} if window == "configured" else {},
            orchestrator_nats_url=f"nats://{listen}",
        )
        with cluster:
            if window == "changed-by-an-operator":
                await shorten_duplicate_window(nats_server.url, 2.0)
            async with Toxiproxy(toxiproxy.url) as tp:
                # NATS -> orchestrator bytes vanish: publishes land, their PubAcks do not come back.
                await tp.add_toxic(
                    "orchestrator-nats", Toxic("lost-acks", "timeout", "downstream", 1.0, {"timeout": 0})
                )
                # One intent at each agent: each is its agent's first attempt, so each is published.
                trapped = {f"trap-{i}": (f"key-{i}", 100 + i) for i in range(1, 4)}
                answers = await asyncio.gather(
                    *(
                        post(http, cluster, agent, {"key": k, "value": v, "cid": cid})
                        for agent, (cid, (k, v)) in zip(cluster.names, trapped.items(), strict=True)
                    )
                )
                for r in answers:
                    assert r.status_code == 202, r.text
                    assert r.json()["outcome"] == "pending-commit"
                published = time.monotonic()
                # Queued behind trap-1: never published before the link heals.
                behind = {"behind-1": ("key-9", 9)}
                r = await post(http, cluster, "agent-1", {"key": "key-9", "value": 9, "cid": "behind-1"})
                assert r.status_code == 202, r.text

                # The commits "failed", yet the stream holds them.
                assert await stream_cids(nats_server.url) == Counter(list(trapped))

                # The one fixed wait: the point is to let the stream's 2 s duplicate window pass
                # (with margin) before any replay can get through, so Nats-Msg-Id no longer helps.
                await asyncio.sleep(max(0.0, 3.5 - (time.monotonic() - published)))
                await tp.remove_toxic("orchestrator-nats", "lost-acks")

                await await_until(
                    lambda: buffers_empty(http, cluster, cluster.names),
                    "the replays to commit",
                    timeout=DEADLINE,
                )
                seqs = await assert_stream_once(nats_server.url, trapped | behind)
                for agent, cid in zip(cluster.names, trapped, strict=True):
                    assert await intent_state(http, cluster, agent, cid) == {
                        "cid": cid,
                        "state": "committed",
                        "stream_seq": seqs[cid],
                    }
                behind_state = await intent_state(http, cluster, "agent-1", "behind-1")
                assert behind_state["stream_seq"] == seqs["behind-1"]

                # The orchestrator found each trapped cid in the stream rather than publishing it:
                # it answered after the window had passed, when Nats-Msg-Id could no longer have
                # deduplicated a republish, and still the stream holds one message each.
                msgs = await stream_messages(nats_server.url)
                stored_at = {json.loads(m.data)["cid"]: m.time.timestamp() for m in msgs}
                committed = [r for r in cluster.orchestrator.lines() if r["msg"] == "committed"]
                for cid in trapped:
                    mine = [r for r in committed if r["cid"] == cid]
                    assert mine and all(r["duplicate"] is True for r in mine), mine
                    assert {r["stream_seq"] for r in mine} == {seqs[cid]}
                    assert all(r["attempt"] > 1 for r in mine)
                    assert min(r["t"] for r in mine) - stored_at[cid] > 2.0, (mine, stored_at[cid])
                first_behind = [r for r in committed if r["cid"] == "behind-1"][0]
                assert first_behind["duplicate"] is False


async def test_a_restarted_agent_answers_a_repeat_as_before(tmp_path, nats_server, http) -> None:
    """The repeat rule holds across a SIGKILL and restart: a cid answered before gets that
    answer again, never a second intent, even when the repeat could now be decided."""
    narrow = {"NETSYNC_VALUE_MAX": "10"}
    with Cluster(tmp_path, nats_server, 3, agent_env={"agent-2": narrow, "agent-3": narrow}) as cluster:
        refused = await post(http, cluster, "agent-1", {"key": "k", "value": 50, "cid": "refused"})
        assert refused.status_code == 409, refused.text
        done = await post(http, cluster, "agent-1", {"key": "k", "value": 5, "cid": "done"})
        assert done.status_code == 200, done.text

        cluster.agents["agent-1"].kill()
        await asyncio.to_thread(cluster.restart_agent, "agent-1")

        assert await intent_state(http, cluster, "agent-1", "refused") == {
            "cid": "refused",
            "state": "aborted",
        }
        seq = done.json()["stream_seq"]
        assert await intent_state(http, cluster, "agent-1", "done") == {
            "cid": "done",
            "state": "committed",
            "stream_seq": seq,
        }
        # Value 5 would find a quorum now: an agent that forgot would make it a second intent.
        again = await post(http, cluster, "agent-1", {"key": "k", "value": 5, "cid": "refused"})
        assert (again.status_code, again.json()) == (409, refused.json())
        again = await post(http, cluster, "agent-1", {"key": "k", "value": 5, "cid": "done"})
        assert (again.status_code, again.json()) == (200, done.json())
        assert await stream_cids(nats_server.url) == Counter(["done"])
        decisions = [
            r for r in cluster.orchestrator.lines() if r.get("cid") == "done" and r["msg"] == "committed"
        ]
        assert len(decisions) == 1, decisions  # not even deduplicated by the stream: never sent again


async def test_quorum_disagreement_and_lost_peers(tmp_path, nats_server, http) -> None:
    narrow = {"NETSYNC_VALUE_MAX": "10"}
    with Cluster(tmp_path, nats_server, 3, agent_env={"agent-2": narrow, "agent-3": narrow}) as cluster:
        r = await post(http, cluster, "agent-1", {"key": "k", "value": 50, "cid": "too-big"})
        assert r.status_code == 409, r.text
        ans = r.json()
        assert ans["outcome"] == "aborted" and ans["cid"] == "too-big"
        assert "agent-2" in ans["reason"] and "agent-3" in ans["reason"], ans
        assert "agent-1:" not in ans["reason"], ans
        state = await intent_state(http, cluster, "agent-1", "too-big")
        assert state == {"cid": "too-big", "state": "aborted"}

        r = await post(http, cluster, "agent-1", {"key": "k", "value": 5, "cid": "small"})
        assert r.status_code == 200, r.text
        assert await assert_stream_once(nats_server.url, {"small": ("k", 5)}) == {"small": 1}

        async def timed(cid: str) -> tuple[float, httpx.Response]:
            t0 = time.monotonic()
            r = await post(http, cluster, "agent-1", {"key": "k", "value": 1, "cid": cid})
            return time.monotonic() - t0, r

        # Peers frozen (SIGSTOP): connections stay open, nobody answers; the intent timeout decides.
        cluster.agents["agent-2"].pause()
        cluster.agents["agent-3"].pause()
        elapsed, r = await timed("frozen")
        assert r.status_code == 409, r.text
        assert r.json()["outcome"] == "aborted"
        assert f"no quorum within {INTENT_TIMEOUT * 1000:.0f} ms" in r.json()["reason"], r.json()
        assert INTENT_TIMEOUT - 0.05 <= elapsed < INTENT_TIMEOUT + 1.5, elapsed

        # Peers killed: aborted within the intent timeout (plus HTTP on a busy machine), or
        # sooner, as soon as both are known unreachable.
        cluster.agents["agent-2"].kill()
        cluster.agents["agent-3"].kill()
        elapsed, r = await timed("alone")
        assert r.status_code == 409, r.text
        assert r.json()["outcome"] == "aborted"
        assert elapsed < INTENT_TIMEOUT + 1.5, (elapsed, r.json())
        assert await stream_cids(nats_server.url) == Counter(["small"])


async def test_telemetry_is_summarised_into_nats(tmp_path, nats_server) -> None:
    """Agents gossip peer-health over libp2p pubsub; the orchestrator's scout publishes one
    summary per interval on root.solar.telemetry.peer-health naming every agent."""
    fast = {"NETSYNC_TELEMETRY_INTERVAL_MS": "300"}
    with Cluster(tmp_path, nats_server, 3, env=fast, orchestrator_env=fast):
        nc = await nats.connect(nats_server.url)
        try:
            sub = await nc.subscribe("root.solar.telemetry.peer-health")

            async def full_summary() -> dict | None:
                summary = json.loads((await sub.next_msg(timeout=DEADLINE)).data)
                return summary if set(summary["agents"]) == {"agent-1", "agent-2", "agent-3"} else None

            summary = await await_until(full_summary, "a summary naming all three agents", timeout=DEADLINE)
        finally:
            await nc.close()
    assert summary["window_end"] > summary["window_start"]
    assert summary["messages"] >= 3
    for agent in summary["agents"].values():
        assert agent["peers_reachable_min"] is not None and 0 <= agent["peers_reachable_min"] <= 2
        assert agent["buffer_depth_max"] == 0
        assert agent["samples"] >= 1
