"""The analytics node in a scenario (issue 30): topology.analytics and changefeed_retention as a user
writes them, the node and its links only where the topology has it, analytics.jsonl's lines as the
collection writes them from the role's /applied and /view, and expect.cdc_gaps judged on hand-made
run directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness import store
from harness.checkers import judge
from harness.observe.analytics import analytics_lines, run_line
from harness.scenario import Scenario
from harness.scenario.topology import Topology
from harness.shape import data_plane_links, node_names, select_links
from harness.topology.analytics_node import analytics_env
from harness.topology.plan import SystemConfig, plan_links
from tests.unit.judging import assert_only, check, found
from tests.unit.rundirs import RunDir


def _scenario(**over: object) -> Scenario:
    doc: dict[str, object] = {"name": "t", "load": {"rate": 10, "duration": "10s"}, **over}
    return Scenario.model_validate(doc)


def test_the_node_is_opt_in_and_its_retention_defaults_to_an_hour() -> None:
    t = Topology.model_validate({})
    assert (t.analytics, t.changefeed_retention, t.surreal_retention) == (False, 3600.0, "1h")
    assert "analytics" not in node_names(3)
    assert not [ln for ln in data_plane_links(3) if "analytics" in ln]


@pytest.mark.parametrize(
    ("given", "printed"), [("30s", "30s"), ("90s", "1m30s"), ("2h", "2h"), (86401, "1d1s")]
)
def test_the_retention_is_given_as_surrealdb_prints_it_back(given: object, printed: str) -> None:
    t = Topology.model_validate({"analytics": True, "changefeed_retention": given})
    assert t.surreal_retention == printed


@pytest.mark.parametrize("bad", ["1.5s", "500ms", 0, "soon", True])
def test_a_retention_that_is_not_whole_seconds_is_refused(bad: object) -> None:
    with pytest.raises(Exception, match="changefeed_retention|duration|whole|0"):
        Topology.model_validate({"changefeed_retention": bad})


def test_analytics_must_be_a_boolean() -> None:
    with pytest.raises(Exception, match="analytics"):
        Topology.model_validate({"analytics": "yes"})


def test_a_fault_on_the_node_needs_the_node() -> None:
    crash = {"at": "1s", "fault": "crash", "target": "analytics", "restart_after": "1s"}
    with pytest.raises(ValidationError, match="topology.analytics: false"):
        _scenario(faults=[crash])
    assert _scenario(topology={"analytics": True}, faults=[crash]).faults[0].target == "analytics"


def test_its_links_are_partitionable_only_when_it_is_there() -> None:
    cut = {"at": "1s", "for": "1s", "fault": "partition", "links": ["analytics>surrealdb"]}
    with pytest.raises(ValidationError, match="analytics"):
        _scenario(faults=[cut])
    _scenario(topology={"analytics": True}, faults=[cut])
    assert select_links("analytics>*", 3, 1, True) == [("analytics", "nats"), ("analytics", "surrealdb")]
    assert select_links("analytics>nats", 1, 3, True) == [("analytics", f"nats-{i}") for i in (1, 2, 3)]
    assert ("analytics", "surrealdb") in select_links("*>surrealdb", 2, 1, True)


def test_cdc_gaps_expected_needs_the_node() -> None:
    with pytest.raises(ValidationError, match="no analytics node"):
        _scenario(expect={"cdc_gaps": "expected"})
    assert (
        _scenario(topology={"analytics": True}, expect={"cdc_gaps": "expected"}).expect.cdc_gaps == "expected"
    )


def test_the_role_reaches_surrealdb_and_every_nats_node_through_its_own_proxies() -> None:
    cfg = SystemConfig(agents=2, nats_nodes=3, analytics=True, changefeed_retention="10s")
    links = plan_links(cfg)
    env = analytics_env(cfg, links)
    assert env["NETSYNC_SURREAL_URL"] == f"ws://toxiproxy:{links['analytics>surrealdb'].port}/rpc"
    assert env["NETSYNC_NATS_URL"].split(",") == [
        f"nats://toxiproxy:{links[f'analytics>nats-{i}'].port}" for i in (1, 2, 3)
    ]
    assert env["NETSYNC_CHANGEFEED_RETENTION"] == "10s"
    ports = [ln.port for ln in links.values()]
    assert len(ports) == len(set(ports))


def test_collected_lines_move_to_the_run_clock_and_the_view_follows_the_applied_log() -> None:
    applied = (
        b'{"t": 1000.5, "type": "applied", "versionstamp": 65536, "cid": "c1", "key": "k", "value": 1,'
        b' "stream_seq": 1}\n'
        b'{"t": 1002.25, "type": "gap", "kind": "unread", "detail": "swept", "cid": "c2"}\n'
    )
    view = b'{"key": "k", "value": 1, "cid": "c1", "stream_seq": 1}\n'
    lines = analytics_lines(applied, view, t0_unix=1000.0, read_at_unix=1030.0)
    assert [(rec["type"], rec["t"]) for rec in lines] == [("applied", 0.5), ("gap", 2.25), ("view", 30.0)]
    assert lines[1]["kind"] == "unread" and lines[1]["cid"] == "c2"
    assert lines[2] == {"t": 30.0, "type": "view", "key": "k", "value": 1, "cid": "c1", "stream_seq": 1}
    assert "t" not in run_line({"t": "late", "type": "gap"}, 1000.0)


def test_a_body_that_is_not_json_lines_of_objects_is_refused() -> None:
    with pytest.raises(ValueError, match="/view line 1"):
        analytics_lines(b"", b"[1, 2]\n", 0.0, 1.0)


def _one_projected(**scenario: object) -> RunDir:
    run = RunDir(**scenario)
    run.invoke("c0", 0.0)
    run.ok("c0", 0.01, outcome="committed", stream_seq=run.message("c0"), quorum_ms=5.0)
    run.row("c0", stream_seq=1)
    run.agents_drained(1.0, ("agent-1",))
    return run


def test_a_node_that_could_not_be_collected_leaves_the_check_unknown(tmp_path: Path) -> None:
    why = "analytics could not be collected: ConnectError: refused"
    run = _one_projected(topology={"analytics": True}, analytics={"collected": False, "detail": why})
    v = judge(run.write(tmp_path))
    a = v["checks"]["analytics"]
    assert a["valid"] == "unknown" and a["error"] == why
    assert v["valid"] == "unknown"


def test_a_topology_with_analytics_and_no_file_is_unknown_not_a_pass(tmp_path: Path) -> None:
    v = judge(_one_projected(topology={"analytics": True}).write(tmp_path))
    a = v["checks"]["analytics"]
    assert a["valid"] == "unknown" and "no analytics.jsonl" in a["error"]


@pytest.mark.parametrize(
    ("scenario", "field"),
    [
        ({"analytics": {"collected": "no"}}, "analytics"),
        ({"analytics": {"collected": False, "detail": 5}}, "analytics"),
        ({"analytics": [1]}, "analytics"),
        ({"topology": {"analytics": "yes"}}, "topology.analytics"),
    ],
)
def test_a_hostile_collection_field_names_the_file_and_field(
    tmp_path: Path, scenario: dict[str, object], field: str
) -> None:
    v = judge(_one_projected(**scenario).write(tmp_path))
    a = v["checks"]["analytics"]
    assert a["valid"] == "unknown" and store.SCENARIO in a["error"] and f"{field}: got" in a["error"]


def test_the_old_uncollected_line_is_no_type_of_the_format(tmp_path: Path) -> None:
    run = _one_projected()
    run.analytics = [{"t": 31.0, "type": "uncollected", "detail": "refused"}]
    a = judge(run.write(tmp_path))["checks"]["analytics"]
    assert a["valid"] == "unknown" and f"{store.ANALYTICS}:1" in a["error"] and "uncollected" in a["error"]


def _lost_and_reported(expect: dict[str, str]) -> RunDir:
    """Two intents projected; the consumer applied c0 and reported c1 as an unread gap."""
    run = RunDir(expect=expect)
    for i in range(2):
        cid = f"c{i}"
        run.invoke(cid, float(i), key=f"k{i}", value=i)
        seq = run.message(cid)
        run.ok(cid, i + 0.01, outcome="committed", stream_seq=seq, quorum_ms=5.0)
        run.row(cid, stream_seq=seq)
    run.agents_drained(2.0, ("agent-1",))
    run.applied("c0", 0.5)
    run.analytics = [
        *(run.analytics or []),
        {"t": 1.5, "type": "gap", "kind": "unread", "detail": "swept", "cid": "c1"},
    ]
    run.view("k0", "c0", 0, 1)
    run.view("k1", "c1", 1, 2)
    return run


def test_a_reported_gap_is_cdc_lost_unless_the_scenario_expects_gaps(tmp_path: Path) -> None:
    assert ("cdc-lost", "c1") in found(check(_lost_and_reported({}), tmp_path / "a"))
    v = check(_lost_and_reported({"cdc_gaps": "expected"}), tmp_path / "b")
    assert_only(v)
    assert v["checks"]["analytics"]["reported_lost"] == 1


def test_expected_gaps_that_never_came_are_an_expectation_anomaly(tmp_path: Path) -> None:
    run = _lost_and_reported({"cdc_gaps": "expected"})
    run.analytics = [rec for rec in run.analytics or [] if rec["type"] != "gap"]
    kinds = {kind for kind, _ in found(check(run, tmp_path))}
    assert kinds == {"cdc-lost", "expectation"}


def test_an_unreported_loss_stays_cdc_lost_when_gaps_are_expected(tmp_path: Path) -> None:
    run = _lost_and_reported({"cdc_gaps": "expected"})
    path = run.write(tmp_path)
    lines = [json.loads(x) for x in (path / store.ANALYTICS).read_text().splitlines()]
    lines = [{**x, "cid": None} if x["type"] == "gap" else x for x in lines]
    (path / store.ANALYTICS).write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert ("cdc-lost", "c1") in found(judge(path))


def test_a_node_that_does_not_answer_leaves_no_file_and_says_why_in_scenario_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import socket
    from types import SimpleNamespace

    from harness.observe import analytics

    async def rows(_sut: object) -> int:
        return 3

    monkeypatch.setattr(analytics, "_store_rows", rows)
    with socket.socket() as s:  # a port nothing listens on: the node is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sut = SimpleNamespace(http_url=lambda _node: f"http://127.0.0.1:{port}")
    said: list[str] = []
    store.write_json(tmp_path / store.SCENARIO, {"name": "t", "topology": {"analytics": True}})
    (tmp_path / store.ANALYTICS).write_text('{"type": "applied"}\n')  # a stale file is not left
    got = asyncio.run(analytics.write_analytics(sut, tmp_path, 0.0, 0.3, said.append))  # type: ignore[arg-type]
    assert got is None
    assert not (tmp_path / store.ANALYTICS).exists()
    resolved = json.loads((tmp_path / store.SCENARIO).read_text())
    assert resolved["name"] == "t" and resolved["analytics"]["collected"] is False
    assert "ConnectError" in resolved["analytics"]["detail"]
    assert any("not caught up" in s for s in said) and any("could not be collected" in s for s in said)


def test_the_applied_log_is_streamed_into_the_file_and_a_bad_line_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from types import SimpleNamespace

    from harness.observe import analytics

    bodies = {
        "/applied": b'{"t": 1000.5, "type": "applied", "cid": "c1", "key": "k", "value": 1}\n'
        b'\n{"t": 1001.0, "type": "gap", "kind": "unread", "detail": "swept", "cid": "c2"}\n',
        "/view": b'{"key": "k", "value": 1, "cid": "c1", "stream_seq": 1}\n',
        "/healthz": b'{"caught_up": true, "applied": 1, "gaps": 1}',
    }

    class Node(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = bodies[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    async def rows(_sut: object) -> int:
        return 2

    server = ThreadingHTTPServer(("127.0.0.1", 0), Node)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sut = SimpleNamespace(http_url=lambda _node: f"http://127.0.0.1:{server.server_address[1]}")
    store.write_json(tmp_path / store.SCENARIO, {"name": "t"})
    monkeypatch.setattr(analytics, "_store_rows", rows)
    try:
        said: list[str] = []
        got = asyncio.run(analytics.write_analytics(sut, tmp_path, 1000.0, 2.0, said.append))  # type: ignore[arg-type]
        lines = [json.loads(x) for x in (tmp_path / store.ANALYTICS).read_text().splitlines()]
        assert got == 1 and [(x["type"], x.get("cid")) for x in lines] == [
            ("applied", "c1"),
            ("gap", "c2"),
            ("view", "c1"),
        ]
        assert lines[0]["t"] == 0.5 and lines[1]["t"] == 1.0
        assert json.loads((tmp_path / store.SCENARIO).read_text())["analytics"] == {"collected": True}
        bodies["/applied"] += b"[3]\n"  # the node answers something else on its fourth line
        assert asyncio.run(analytics.write_analytics(sut, tmp_path, 1000.0, 2.0, said.append)) is None  # type: ignore[arg-type]
        assert sorted(p.name for p in tmp_path.iterdir()) == [store.SCENARIO]
        detail = json.loads((tmp_path / store.SCENARIO).read_text())["analytics"]["detail"]
        assert "/applied line 4 is not a JSON object" in detail
    finally:
        server.shutdown()
        server.server_close()
