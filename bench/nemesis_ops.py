"""How long the nemesis takes to apply and to heal each kind of fault, on an idle system.

  python bench/nemesis_ops.py [--rounds 3]

Brings the system up (3 agents), posts 66 intents to agent-2 (what `repeat` posts again, about
what agent-restart-repeats reposts), then, round after round, starts and stops one fault of
each case below and prints the median and max of each in ms. A start's time is its share of
a fault's lateness (t - scheduled, bench/fault_lateness.py) that the nemesis itself causes;
in a scenario the load, the sampler and the containers share the 2 cores with it. Uses
Docker: run it under the heavy-job lock like the integration tests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from harness.images import Images  # noqa: E402
from harness.load import Answered  # noqa: E402
from harness.nemesis import Nemesis  # noqa: E402
from harness.scenario import FAULTS, BaseFault  # noqa: E402
from harness.topology.plan import SystemConfig  # noqa: E402
from harness.topology.system import System  # noqa: E402

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("partition refuse", "partition", {"groups": [["agent-1"], ["agent-2", "agent-3"]]}),
    (
        "partition blackhole",
        "partition",
        {"groups": [["agent-1"], ["agent-2", "agent-3"]], "mode": "blackhole"},
    ),
    ("isolate", "isolate", {"target": "agent-2"}),
    ("latency", "latency", {"links": "agents>orchestrator", "latency": "50ms"}),
    ("slicer", "slicer", {"links": "agents>orchestrator", "average_size": 64}),
    ("outage refuse", "outage", {"target": "nats", "mode": "refuse"}),
    ("outage blackhole", "outage", {"target": "surrealdb", "mode": "blackhole"}),
    ("crash agent", "crash", {"target": "agent-3"}),
    ("crash projector", "crash", {"target": "projector"}),
    ("pause", "pause", {"target": "orchestrator"}),
    ("outage kill", "outage", {"target": "nats", "mode": "kill"}),
    ("repeat (66)", "repeat", {"target": "agent-2"}),
]


def fault(kind: str, fields: dict[str, Any]) -> BaseFault:
    return FAULTS[kind].model_validate({"fault": kind, "at": 0, **fields})


async def answered_by(sut: System, agent: str, n: int) -> list[Answered]:
    url = sut.http_url(agent)
    out = []
    async with httpx.AsyncClient(timeout=10) as http:
        for i in range(n):
            cid = f"bench-{time.time_ns()}-{i}"
            r = await http.post(f"{url}/intents", json={"key": f"k{i}", "value": i, "cid": cid})
            out.append(Answered(cid, f"k{i}", i, r.json()["outcome"]))
    return out


async def measure(sut: System, rounds: int) -> dict[str, list[tuple[float, float]]]:
    answered = await answered_by(sut, "agent-2", 66)
    nemesis = Nemesis(sut, lambda event: None, lambda agent: answered)
    took: dict[str, list[tuple[float, float]]] = {}
    try:
        for r in range(rounds):
            for i, (name, kind, fields) in enumerate(CASES):
                fault_id = f"b{r}-{i}"
                t = time.perf_counter()
                await nemesis.start(fault(kind, fields), fault_id)
                started = time.perf_counter()
                await nemesis.stop(fault_id)
                took.setdefault(name, []).append(
                    ((started - t) * 1000, (time.perf_counter() - started) * 1000)
                )
    finally:
        await nemesis.heal_all()
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    images = Images("auto")
    images.ensure()
    with System(images, SystemConfig(agents=3)) as sut:
        took = asyncio.run(measure(sut, args.rounds))
    head = f"{'fault':<20} {'start p50':>10} {'start max':>10} {'stop p50':>10} {'stop max':>10}"
    print(f"{head}  (ms, {args.rounds} rounds)")
    for name, values in took.items():
        starts, stops = [v[0] for v in values], [v[1] for v in values]
        print(
            f"{name:<20} {statistics.median(starts):>10.1f} {max(starts):>10.1f} "
            f"{statistics.median(stops):>10.1f} {max(stops):>10.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
