/**
 * The projector's Prometheus metrics (docs/contract.md, "Health": GET /metrics), with the names, types and
 * help texts of netsync's projector (netsync/projector_http.py), and the process's own, in a registry of
 * the projector's own.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'

export class ProjectorMetrics {
  readonly registry = new Registry()
  readonly projected = new Counter({ name: 'netsync_projected_total', help: 'Messages written to SurrealDB and acked', registers: [this.registry] })
  readonly writeFailures = new Counter({ name: 'netsync_projector_write_failures_total', help: 'Failed SurrealDB writes (each retried)', registers: [this.registry] })
  readonly deadLetters = new Counter({ name: 'netsync_projector_dead_letters_total', help: 'Messages dead-lettered: terminated unprojected, as no write could store them', registers: [this.registry] })
  readonly lastSeq = new Gauge({ name: 'netsync_projector_last_seq', help: 'Stream seq of the last projected message', registers: [this.registry] })
  readonly natsConnected = new Gauge({ name: 'netsync_projector_nats_connected', help: '1 when connected to NATS', registers: [this.registry] })
  readonly surrealConnected = new Gauge({ name: 'netsync_projector_surreal_connected', help: '1 when connected to SurrealDB', registers: [this.registry] })

  constructor () {
    collectDefaultMetrics({ register: this.registry }) // process_resident_memory_bytes, process_open_fds, ...
  }

  async text (): Promise<{ contentType: string, body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}
