"""The agent's Prometheus metrics (docs/contract.md, "Agent HTTP API": GET /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector


class Metrics:
    def __init__(self, cap: int) -> None:
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        self.buffer_depth = Gauge("netsync_buffer_depth", "Intents in the pending-commit buffer", registry=r)
        self.buffer_cap = Gauge("netsync_buffer_cap", "Capacity of the pending-commit buffer", registry=r)
        self.pending = Gauge(
            "netsync_pending_commit", "Intents answered pending-commit, not yet committed", registry=r
        )
        self.replays = Counter("netsync_replays", "Buffered intents committed by replay", registry=r)
        self.replay_failures = Counter("netsync_replay_failures", "Replay attempts that failed", registry=r)
        self.intents = Counter("netsync_intents", "Intents answered, by outcome", ["outcome"], registry=r)
        buckets = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
        self.quorum = Histogram(
            "netsync_quorum_seconds", "Time to a quorum decision", buckets=buckets, registry=r
        )
        self.commit = Histogram(
            "netsync_commit_seconds", "Time to the orchestrator's answer", buckets=buckets, registry=r
        )
        self.peers = Gauge("netsync_peers_reachable", "Peers that answered the last request", registry=r)
        self.nats = Gauge(
            "netsync_nats_reachable", "NATS reachable, as last seen through the orchestrator", registry=r
        )
        self.buffer_cap.set(cap)
