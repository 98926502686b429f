/**
 * The decision/commit client (docs/contract.md, "Commitment: /root-solar/decision/1.0.0"): sends the
 * orchestrator a decision frame for a decided intent and reads whether it is in the stream. The agent
 * answers 200 on `committed`; on anything else (`nats-unavailable`, `invalid`, a timeout, an unreachable
 * orchestrator) it journals the decision and answers 202 (buffer.ts).
 */
import { DECISION_PROTOCOL, isJsonInteger, toJson, type Decision, type JsonObject } from './wire.js'
import { PeerUnavailableError, type FrameNode, type Peer } from './node.js'
import { firstAttemptAge } from './clock.js'
import type { Pending } from './buffer.js'

export type CommitResult =
  | { committed: true, seq: number, duplicate: boolean }
  | { committed: false, status: 'nats-unavailable' | 'invalid' | 'unreachable' | 'error', error: string }

export interface CommitOptions {
  /** NETSYNC_COMMIT_TIMEOUT_MS */
  timeoutMs: number
  /** thisBoot(): the boot the agent runs in, which ages a replay (clock.ts) */
  boot: string
  signal?: AbortSignal
}

/** The decision frame for `entry`, its age measured now on this agent's clocks. */
export function decisionFrame (entry: Pending, boot: string): Decision {
  return {
    type: 'decision',
    cid: entry.cid,
    key: entry.key,
    value: entry.value,
    proposer: entry.proposer,
    decided_at: entry.decided_at,
    first_attempt_at: entry.first_attempt_at,
    first_attempt_age_s: firstAttemptAge(entry, boot),
    attempt: entry.attempt
  }
}

/** Ask the orchestrator to commit `entry`; never throws for the orchestrator's or the network's failures. */
export async function commitDecision (node: FrameNode, orchestrator: Peer, entry: Pending, options: CommitOptions): Promise<CommitResult> {
  let answer: JsonObject
  try {
    const call: { timeoutMs: number, signal?: AbortSignal } = { timeoutMs: options.timeoutMs }
    if (options.signal !== undefined) call.signal = options.signal
    answer = await node.request(orchestrator, DECISION_PROTOCOL, { ...decisionFrame(entry, options.boot) }, call)
  } catch (err) {
    if (err instanceof PeerUnavailableError) return { committed: false, status: 'unreachable', error: err.message }
    throw err
  }
  if (answer.status === 'committed' && isJsonInteger(answer, 'seq')) {
    return { committed: true, seq: Number(answer.seq), duplicate: answer.duplicate === true }
  }
  const status = answer.status === 'nats-unavailable' || answer.status === 'invalid' ? answer.status : 'error'
  return { committed: false, status, error: String(answer.error ?? toJson(answer)) }
}
