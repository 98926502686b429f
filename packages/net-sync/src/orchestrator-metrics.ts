/**
 * The orchestrator's Prometheus metrics (GET /metrics), with netsync's names, types, help texts and
 * buckets (netsync/orchestrator.py), and the process's own, in a registry of its own: no global state.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/** prometheus_client's default buckets, which netsync's netsync_publish_seconds uses. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

export class OrchestratorMetrics {
  readonly registry = new Registry()
  readonly decisions = new Counter({ name: 'netsync_decisions_total', help: 'Decisions received, by answer', labelNames: ['status'], registers: [this.registry] })
  readonly publish = new Histogram({ name: 'netsync_publish_seconds', help: 'Time to a PubAck', buckets: BUCKETS, registers: [this.registry] })
  readonly nats = new Gauge({ name: 'netsync_nats_reachable', help: 'Connected to NATS', registers: [this.registry] })
  readonly lookups = new Counter({ name: 'netsync_window_lookups_total', help: 'Replays looked up in the stream', registers: [this.registry] })

  constructor () {
    collectDefaultMetrics({ register: this.registry }) // process_resident_memory_bytes, process_open_fds, ...
  }

  /** The Prometheus text of every metric, and its content type. */
  async text (): Promise<{ contentType: string, body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}
