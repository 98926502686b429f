"""What faultfs costs NATS: acknowledged JetStream publishes per second into a file stream, with NATS's
store_dir on the container's own file system and on faultfs, with JetStream's default sync and with
`sync_interval: always`.

  python bench/faultfs_nats.py [--msgs 3000] [--inflight 32] [--size 256] [--repeat 3] [--json]

Each case brings up one NATS container (the images' nats, as the topology defines it), publishes --msgs
messages of --size bytes with up to --inflight awaiting their ack, and takes the rate; cases alternate
--repeat times so a change in the machine's load falls on all alike; the figure is the median. Docker:
run it under the heavy lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats  # noqa: E402

from harness.images import Images  # noqa: E402
from harness.topology.disks import RunDisks  # noqa: E402
from harness.topology.docker import DockerRun  # noqa: E402
from harness.topology.services import NATS, NATS_CLIENT_PORT, NATS_CONFIG, nats_config  # noqa: E402

CASES = [("container", None), ("faultfs", None), ("container", "always"), ("faultfs", "always")]


async def publish(url: str, msgs: int, inflight: int, size: int) -> float:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=10)
        await js.add_stream(name="BENCH", subjects=["bench.>"])
        body = b"x" * size
        gate = asyncio.Semaphore(inflight)

        async def one(i: int) -> None:
            async with gate:
                await js.publish(f"bench.{i % 16}", body)

        t = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(msgs)))
        return msgs / (time.perf_counter() - t)
    finally:
        await nc.close()


def case(images: Images, disk: str, sync: str | None, args: argparse.Namespace) -> float:
    with DockerRun(images) as run:
        disks = RunDisks(run.run_id)
        try:
            mounts = disks.data_mount("nats", NATS.data_dir, ("nats",) if disk == "faultfs" else ())
            extra: tuple[str, ...] = ()
            if sync is not None:
                mounts[NATS_CONFIG] = (disks.file("nats.conf", nats_config(sync)), "ro")
                extra = ("-c", NATS_CONFIG)
            NATS.define(run, run.network("nats"), args=extra, mounts=mounts)
            run.start()
            NATS.wait_ready(run)
            url = f"nats://127.0.0.1:{run.host_port('nats', NATS_CLIENT_PORT)}"
            return asyncio.run(publish(url, args.msgs, args.inflight, args.size))
        finally:
            run.close()
            disks.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--msgs", type=int, default=3000)
    p.add_argument("--inflight", type=int, default=32)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    images = Images("auto", log=lambda m: None)
    images.ensure(("nats", "reaper"))
    rates: dict[str, list[float]] = {f"{d}/{s or 'default'}": [] for d, s in CASES}
    for _ in range(args.repeat):
        for disk, sync in CASES:
            rates[f"{disk}/{sync or 'default'}"].append(case(images, disk, sync, args))
    medians = {k: round(statistics.median(v)) for k, v in rates.items()}
    if args.json:
        print(json.dumps({"medians": medians, "runs": rates}))
        return
    for k, v in medians.items():
        print(f"{k:<20} {v:>8} acked publishes/s  (runs: {', '.join(f'{r:.0f}' for r in rates[k])})")


if __name__ == "__main__":
    main()
