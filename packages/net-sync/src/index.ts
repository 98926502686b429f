/**
 * @root-solar/net-sync: root.solar's intent/commitment bridge (libp2p gossip, NATS JetStream,
 * SurrealDB), the second implementation of solar-chaos's docs/contract.md. The public face: each
 * concept lives in a file of its own beside this one.
 */
export * from './config.js'
export * from './identity.js'
export * from './wire.js'
export * from './node.js'
export * from './buffer.js'
export * from './clock.js'
export * from './quorum.js'
export * from './commit.js'
export * from './replay.js'
export * from './intents.js'
export * from './answers.js'
export * from './keepalive.js'
export * from './telemetry.js'
export * from './log.js'
export * from './metrics.js'
export * from './store.js'
export { Projector, type ProjectorHealth } from './projector.js'
export { ProjectorMetrics } from './projector-metrics.js'
export { DeadLetter, logDeadLetter, Malformed, parseBody, type Commitment } from './deadletter.js'
export { refused, storeFailed, SurrealSession, SurrealUnavailable } from './surreal-session.js'
export * from './lookup.js'
export { NatsUnavailableError, Publisher, type Committed, type PublisherOptions } from './publisher.js'
export * from './scout.js'
export { OrchestratorMetrics } from './orchestrator-metrics.js'
