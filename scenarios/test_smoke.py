"""Smoke scenario: the stack comes up, commands published through Toxiproxy land in
JetStream, a `refuse` outage of the proxied link fails publishes at once and is
recorded in the history, and after the heal publishing works again.

Interim, until YAML scenarios (issue 5) replace it; it already leaves a run directory
(scenario.json, history.jsonl, stream.jsonl) in reports/<run-id>/smoke/.
"""

from __future__ import annotations

import json
import time

import nats
import nats.errors
import pytest

from harness.paths import reports_dir
from harness.topology.docker import DockerRun
from harness.topology.services import NATS, NATS_CLIENT_PORT, SURREALDB, TOXIPROXY, TOXIPROXY_API_PORT
from harness.toxiproxy import Toxiproxy

pytestmark = pytest.mark.docker

SUBJECT = "root.solar.command.sentiment.set"
PROXY_PORT = 20000


async def test_smoke(images) -> None:
    with DockerRun(images) as run:
        net = run.network("data")
        NATS.define(run, net)
        SURREALDB.define(run, net)
        TOXIPROXY.define(run, net, extra_ports=(PROXY_PORT,))
        run.start()
        for svc in (NATS, SURREALDB, TOXIPROXY):
            svc.wait_ready(run)

        out = reports_dir() / run.run_id / "smoke"
        out.mkdir(parents=True)
        (out / "scenario.json").write_text(json.dumps({"name": "smoke", "seed": 0}) + "\n")
        history = open(out / "history.jsonl", "w")
        t0 = time.monotonic()

        def record(**op) -> None:
            history.write(json.dumps({"t": round(time.monotonic() - t0, 6), **op}) + "\n")

        api = f"http://127.0.0.1:{run.host_port('toxiproxy', TOXIPROXY_API_PORT)}"
        async with Toxiproxy(api) as tp:
            await tp.create("harness>nats", f"0.0.0.0:{PROXY_PORT}", f"nats:{NATS_CLIENT_PORT}")
            direct = await nats.connect(f"nats://127.0.0.1:{run.host_port('nats', NATS_CLIENT_PORT)}")
            await direct.jetstream().add_stream(name="COMMANDS", subjects=[SUBJECT])

            async def publish(i: int) -> str:
                cid = f"smoke-{i:03d}"
                record(process="c0", type="invoke", f="intent", cid=cid, key=f"k{i % 5}", value=i)
                try:
                    nc = await nats.connect(
                        f"nats://127.0.0.1:{run.host_port('toxiproxy', PROXY_PORT)}",
                        allow_reconnect=False,
                        connect_timeout=1,
                    )
                except (OSError, nats.errors.Error) as e:
                    record(process="c0", type="fail", f="intent", cid=cid, outcome="aborted", error=str(e))
                    return "fail"
                try:
                    ack = await nc.jetstream().publish(
                        SUBJECT,
                        json.dumps({"cid": cid, "key": f"k{i % 5}", "value": i}).encode(),
                        headers={"Nats-Msg-Id": cid, "Correlation-Id": cid},
                        timeout=2,
                    )
                    record(
                        process="c0", type="ok", f="intent", cid=cid, outcome="committed", stream_seq=ack.seq
                    )
                    return "ok"
                finally:
                    await nc.close()

            before = [await publish(i) for i in range(10)]
            await tp.set_enabled("harness>nats", False)
            record(
                process="nemesis",
                type="info",
                f="start",
                fault="outage",
                fault_id="f1",
                target={"links": ["harness>nats"], "mode": "refuse"},
            )
            during = [await publish(i) for i in range(10, 15)]
            await tp.set_enabled("harness>nats", True)
            record(process="nemesis", type="info", f="stop", fault="outage", fault_id="f1")
            after = [await publish(i) for i in range(15, 25)]
            history.close()

            js = direct.jetstream()
            sub = await js.pull_subscribe(SUBJECT, durable="smoke-reader")
            msgs = await sub.fetch(100, timeout=2)
            with open(out / "stream.jsonl", "w") as f:
                for m in msgs:
                    body = json.loads(m.data)
                    f.write(
                        json.dumps(
                            {
                                "seq": m.metadata.sequence.stream,
                                "subject": m.subject,
                                "msg_id": m.headers.get("Nats-Msg-Id"),
                                **body,
                            }
                        )
                        + "\n"
                    )
            await direct.close()

        assert before == ["ok"] * 10 and after == ["ok"] * 10
        assert during == ["fail"] * 5, "a refused link must fail at once, never hang"
        stream_cids = [json.loads(line)["cid"] for line in open(out / "stream.jsonl")]
        ok_cids = [
            json.loads(line)["cid"]
            for line in open(out / "history.jsonl")
            if json.loads(line).get("type") == "ok"
        ]
        assert sorted(stream_cids) == sorted(ok_cids), "every acknowledged publish is in the stream once"
