/**
 * `net-sync orchestrator` (docs/contract.md, "Commitment", "Health", "Telemetry"): serves
 * `/root-solar/decision/1.0.0`, committing each decision into the JetStream stream (publisher.ts, with
 * lookup.ts's rule past the duplicate window), summarises the agents' telemetry into NATS (scout.ts), and
 * answers /healthz `{"name", "peer_id", "nats"}` and /metrics. libp2p serves from the start; decisions
 * are answered `nats-unavailable` until NATS and the stream are there.
 */
import { announce } from '../bugs.js'
import { orchestratorConfig, type Env } from '../config.js'
import type { RoleHandle } from '../cli.js'
import { monotonicNow } from '../clock.js'
import { close, httpServer, json, listen } from '../http.js'
import { privateKeyForSeed } from '../identity.js'
import { isReplay } from '../lookup.js'
import type { Log } from '../log.js'
import { createNode } from '../node.js'
import { OrchestratorMetrics } from '../orchestrator-metrics.js'
import { NatsUnavailableError, Publisher } from '../publisher.js'
import { Scout } from '../scout.js'
import { SUMMARY_SUBJECT, telemetryPubsub } from '../telemetry.js'
import { DECISION_PROTOCOL, readDecision, type JsonObject, type JsonValue } from '../wire.js'

/** The cid an answer names, as netsync writes it (`str(d.get("cid"))`): also for a frame without one. */
function cidOf (cid: JsonValue | undefined): string {
  if (typeof cid === 'string') return cid
  if (cid === undefined || cid === null) return 'None'
  if (typeof cid === 'boolean') return cid ? 'True' : 'False'
  return typeof cid === 'object' ? JSON.stringify(cid) : String(cid)
}

export async function start (env: Env, log: Log): Promise<RoleHandle> {
  const config = orchestratorConfig(env)
  announce(config.bugs, 'orchestrator', log)
  const metrics = new OrchestratorMetrics()
  const publisher = new Publisher({
    servers: config.natsServers,
    stream: config.stream,
    publishTimeoutMs: config.publishTimeoutMs,
    log,
    onLookup: () => { metrics.lookups.inc() },
    bugs: config.bugs
  })
  const node = await createNode({
    privateKey: await privateKeyForSeed(config.identitySeed), listen: config.listen, pubsub: telemetryPubsub()
  })

  const decide = async (frame: JsonObject): Promise<JsonObject> => {
    const cid = cidOf(frame.cid)
    const decision = readDecision(frame)
    if ('invalid' in decision) return { cid, status: 'invalid', error: decision.invalid }
    const received = monotonicNow()
    try {
      const { seq, duplicate } = await publisher.commit(decision, isReplay(frame.attempt), received)
      metrics.publish.observe(monotonicNow() - received)
      metrics.decisions.inc({ status: 'committed' })
      metrics.nats.set(1)
      log.info('committed', { cid, stream_seq: seq, duplicate, attempt: frame.attempt ?? null })
      return { cid, status: 'committed', seq, duplicate }
    } catch (err) {
      if (!(err instanceof NatsUnavailableError)) throw err
      metrics.decisions.inc({ status: 'nats-unavailable' })
      metrics.nats.set(0)
      log.warning('nats-unavailable', { cid, error: err.message, attempt: frame.attempt ?? null })
      return { cid, status: 'nats-unavailable', error: err.message }
    }
  }
  await node.handle(DECISION_PROTOCOL, decide)

  const scout = new Scout(config.telemetryIntervalMs, (summary) => publisher.publishJson(SUMMARY_SUBJECT, summary))
  scout.start(node.pubsub!)

  const server = httpServer([
    { method: 'GET', path: '/healthz', handler: () => json(200, { name: config.name, peer_id: node.peerId, nats: publisher.ready }) },
    {
      method: 'GET',
      path: '/metrics',
      handler: async () => {
        const { contentType, body } = await metrics.text()
        return { status: 200, text: body, contentType }
      }
    }
  ], log)
  await listen(server, config.httpPort)

  const connecting = publisher.connect().then(() => { metrics.nats.set(1) })
  log.info('orchestrator up', { peer_id: node.peerId, nats: config.natsServers.join(',') })

  return {
    stop: async () => {
      scout.stop()
      await close(server)
      await publisher.close()
      await connecting
      await node.stop()
    }
  }
}
