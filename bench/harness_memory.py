"""The harness's own memory under a long load, without containers: the asyncio load engine sends the
seeded plan at --rate for --seconds to stand-in agents (a subprocess answering every POST /intents at
once with 200, as an agent that commits), writing a real history file, while this process samples its
own RSS every --every seconds and, with --trace, tracemalloc's largest growths since the warm-up.

    .venv/bin/python bench/harness_memory.py --rate 200 --seconds 600
    .venv/bin/python bench/harness_memory.py --rate 200 --seconds 180 --trace

Growth is judged as in the soak (the harness's rss_bytes in samples.jsonl): from the end of the warm-up
(--warmup, 60 s) to the end. Results: reports/bench/harness-memory.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.history import History  # noqa: E402
from harness.load import Load, LoadPlan  # noqa: E402
from harness.observe.processes import harness_sample  # noqa: E402
from harness.topology.ports import free_port  # noqa: E402

AGENT = r"""
import asyncio, sys
BODY = b'{"cid":"x","outcome":"committed","stream_seq":1,"quorum_ms":1.0}'
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(BODY)
async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            size = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    size = int(line.split(b":")[1])
            await reader.readexactly(size)
            writer.write(HEAD + BODY)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    servers = [await asyncio.start_server(serve, "127.0.0.1", int(p)) for p in sys.argv[1:]]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))
asyncio.run(main())
"""


async def measure(args: argparse.Namespace) -> dict:
    ports = [free_port() for _ in range(3)]
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT, *map(str, ports)], stdout=subprocess.PIPE, text=True
    )
    assert agent.stdout is not None and agent.stdout.readline().strip() == "ready"
    urls = {f"agent-{i + 1}": f"http://127.0.0.1:{p}" for i, p in enumerate(ports)}
    points: list[tuple[float, int]] = []
    top: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        history = History(Path(tmp) / "history.jsonl")
        plan = LoadPlan(
            rate=args.rate, duration=args.seconds, keys=64, clients=args.clients, timeout=2.0, seed=1
        )
        load = Load(urls, history, plan, "bench")
        stop = asyncio.Event()
        baseline = None

        async def sample() -> None:
            nonlocal baseline
            while not stop.is_set():
                t = history.now()
                points.append((round(t, 1), harness_sample()["rss_bytes"]))
                if args.trace and baseline is None and t >= args.warmup:
                    baseline = tracemalloc.take_snapshot()
                try:
                    await asyncio.wait_for(stop.wait(), args.every)
                except TimeoutError:
                    pass

        if args.trace:
            tracemalloc.start(8)
        history.t0 = time.monotonic()
        sampler = asyncio.create_task(sample())
        await load.run()
        stop.set()
        await sampler
        if args.trace and baseline is not None:
            diff = tracemalloc.take_snapshot().compare_to(baseline, "traceback")
            for stat in diff[:8]:
                top.append(
                    f"{stat.size_diff / 1024:+.0f} KiB in {stat.count_diff:+d} blocks\n    "
                    + "\n    ".join(stat.traceback.format()[-6:])
                )
        history.close()
    agent.terminate()
    judged = [p for p in points if p[0] >= args.warmup]
    first, last = judged[0][1], judged[-1][1]
    return {
        "rate": args.rate,
        "seconds": args.seconds,
        "intents": load.done,
        "rss_mib_at_warmup": round(first / 2**20, 1),
        "rss_mib_at_end": round(last / 2**20, 1),
        "growth_pct": round(100 * (last - first) / first, 2),
        "points": points,
        "top_growth": top,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--clients", type=int, default=256)
    p.add_argument("--every", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=60.0)
    p.add_argument("--trace", action="store_true", help="tracemalloc: where memory grew after the warm-up")
    p.add_argument("--out", default="reports/bench/harness-memory.json")
    args = p.parse_args()
    result = asyncio.run(measure(args))
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(
        f"{result['intents']} intents at {args.rate:g}/s for {args.seconds:g} s: harness RSS "
        f"{result['rss_mib_at_warmup']} MiB after the {args.warmup:g} s warm-up, "
        f"{result['rss_mib_at_end']} MiB at the end ({result['growth_pct']:+.2f} %)"
    )
    for line in result["top_growth"]:
        print(line)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
