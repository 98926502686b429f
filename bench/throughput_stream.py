"""Reading the JetStream stream for bench/netsync_throughput.py: its last sequence, and each of a
rate's cids with the time the stream stored it, which is when an intent answered 202 was committed
(same host, same clock as the client's send times), counting cids stored more than once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import nats

from harness.shape import STREAM


async def stream_last_seq(nats_url: str) -> int:
    nc = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        return (await nc.jetstream(timeout=5).stream_info(STREAM)).state.last_seq
    finally:
        await nc.close()


async def stream_store_times(nats_url: str, after_seq: int, prefix: str) -> tuple[dict[str, float], int]:
    """{cid: store time} for our cids (those starting with `prefix`) stored after
    `after_seq`, and how many cids were stored more than once (exactly-once check)."""
    nc = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=5)
        last = (await js.stream_info(STREAM)).state.last_seq
        counts: Counter[str] = Counter()
        times: dict[str, float] = {}
        seqs = list(range(after_seq + 1, last + 1))
        for start in range(0, len(seqs), 64):  # 64 lookups at a time: thousands of messages
            msgs = await asyncio.gather(*(js.get_msg(STREAM, s) for s in seqs[start : start + 64]))
            for m in msgs:
                cid = json.loads(m.data)["cid"]
                if cid.startswith(prefix):
                    counts[cid] += 1
                    times.setdefault(cid, m.time.timestamp())
        return times, sum(1 for n in counts.values() if n > 1)
    finally:
        await nc.close()
