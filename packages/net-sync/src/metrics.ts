/**
 * The agent's Prometheus metrics (docs/contract.md, "Agent HTTP API": GET /metrics), with netsync's names,
 * types, help texts and buckets, and the process's own (resident memory, open fds), in a registry of
 * the agent's own: no global state.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

export class AgentMetrics {
  readonly registry = new Registry()
  readonly bufferDepth = new Gauge({ name: 'netsync_buffer_depth', help: 'Intents in the pending-commit buffer', registers: [this.registry] })
  readonly bufferCap = new Gauge({ name: 'netsync_buffer_cap', help: 'Capacity of the pending-commit buffer', registers: [this.registry] })
  readonly pending = new Gauge({ name: 'netsync_pending_commit', help: 'Intents answered pending-commit, not yet committed', registers: [this.registry] })
  readonly replays = new Counter({ name: 'netsync_replays_total', help: 'Buffered intents committed by replay', registers: [this.registry] })
  readonly replayFailures = new Counter({ name: 'netsync_replay_failures_total', help: 'Replay attempts that failed', registers: [this.registry] })
  readonly intents = new Counter({ name: 'netsync_intents_total', help: 'Intents answered, by outcome', labelNames: ['outcome'], registers: [this.registry] })
  readonly quorum = new Histogram({ name: 'netsync_quorum_seconds', help: 'Time to a quorum decision', buckets: BUCKETS, registers: [this.registry] })
  readonly commit = new Histogram({ name: 'netsync_commit_seconds', help: "Time to the orchestrator's answer", buckets: BUCKETS, registers: [this.registry] })
  readonly peers = new Gauge({ name: 'netsync_peers_reachable', help: 'Peers that answered the last request', registers: [this.registry] })
  readonly nats = new Gauge({ name: 'netsync_nats_reachable', help: 'NATS reachable, as last seen through the orchestrator', registers: [this.registry] })

  constructor (cap: number) {
    collectDefaultMetrics({ register: this.registry }) // process_resident_memory_bytes, process_open_fds, ...
    this.bufferCap.set(cap)
  }

  /** The Prometheus text of every metric, and its content type. */
  async text (): Promise<{ contentType: string, body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}
