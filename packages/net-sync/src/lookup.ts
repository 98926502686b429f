/**
 * The orchestrator's rule "Exactly once, also past the duplicate window" (docs/contract.md): which replay
 * must first be looked up in the stream, and the lookup itself, a headers-only scan by a consumer of its
 * own that says "absent" only when the consumer confirms the scan read everything it delivered.
 */
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import { monotonicNow } from './clock.js'
import type { Decision, JsonValue } from './wire.js'

/** A replay counts as past the window once its first attempt is older than 90 % of it when it lands. */
export const WINDOW_MARGIN = 0.9
/** The scan starts this much before the first attempt, for the clocks of NATS's host and this one. */
export const CLOCK_SLACK_S = 5
export const COMMAND_SUBJECT = 'root.solar.command.sentiment.set'
export const CID_HEADER = 'Correlation-Id'
/** Messages asked for per pull; the scan waits a second of quiet before asking the consumer. */
const BATCH = 256
const QUIET_MS = 1000

/** A lookup that could not say: NATS stalled, a message went missing, or the consumer did not answer. */
export class LookupStalledError extends Error {
  override name = 'LookupStalledError'
}

/**
 * Is the decision a replay (`attempt > 1`)? As netsync reads it: an integer (or its text) above 1; a
 * missing attempt is the first; anything it cannot read is treated as a replay.
 */
export function isReplay (attempt: JsonValue | undefined): boolean {
  if (attempt === undefined) return false
  if (typeof attempt === 'number' && Number.isFinite(attempt)) return Math.trunc(attempt) > 1
  if (typeof attempt === 'bigint') return attempt > 1n
  if (typeof attempt === 'boolean') return false // Python's int(True) is 1
  if (typeof attempt === 'string' && /^\s*[+-]?\d+\s*$/.test(attempt)) return BigInt(attempt.trim()) > 1n
  return true
}

/**
 * When the decision was first tried, in Unix seconds on this host's clock, or undefined when it cannot
 * tell. From the agent's `first_attempt_age_s` (its own clocks), aged by `waitedS` since it arrived;
 * `first_attempt_at` (the agent's wall clock) only for an agent that sends no age (agent-clock-skew).
 */
export function firstAttempt (decision: Decision, waitedS: number, nowS = Date.now() / 1000,
  trustAgentClock = false): number | undefined {
  const age = decision.first_attempt_age_s
  // trustAgentClock: the planted bug trust-agent-clock (bugs.ts) dates it by the agent's clock
  if (typeof age === 'number' && Number.isFinite(age) && !trustAgentClock) return nowS - waitedS - Math.max(0, age)
  const at = decision.first_attempt_at
  return Number.isFinite(at) ? at : undefined
}

/**
 * The latest a publish sent now lands in the stream (Unix s): later by the PubAck's wait, or by the round
 * trip to NATS just measured (since `askedMono`, clock.ts's monotonicNow()) when the link is slower than that
 * (slow-stream-window: judged by its age at send, a replay landed past the window and was stored twice).
 */
export function landsAt (askedMono: number, publishTimeoutMs: number, nowS = Date.now() / 1000): number {
  return nowS + Math.max(publishTimeoutMs / 1000, monotonicNow() - askedMono)
}

/** Must the replay be looked up first? Yes when its first attempt is unknown or near the window's end. */
export function pastWindow (first: number | undefined, lands: number, windowS: number): boolean {
  return first === undefined || lands - first >= windowS * WINDOW_MARGIN
}

/** The stream's duplicate window in seconds, as the stream reports it now (not this process's setting). */
export function duplicateWindowS (info: StreamInfo): number {
  return (info.config.duplicate_window ?? 0) / 1e9
}

/**
 * The stream seq of the message carrying `cid` in its Correlation-Id header, scanning from `since` (Unix s,
 * minus CLOCK_SLACK_S; 0 for the whole stream), or undefined when it is not there. `info` is the stream as
 * read for this decision: the scan ends at its last seq.
 *
 * A pull consumer of its own, headers only, read in its own order: a message whose consumer seq skips one
 * fails the lookup, and a quiet second ends it as "absent" only when the consumer says nothing is left and
 * it delivered exactly what this scan read. netsync found the need with nats-py's ordered consumer, which
 * after a pause of NATS re-created itself with a start sequence and time the server refuses, went quiet,
 * and its silence was taken for "absent": one intent stored twice (lookup-stall). Throws
 * LookupStalledError when it cannot tell.
 */
export async function findInStream (js: JetStreamClient, jsm: JetStreamManager, info: StreamInfo, cid: string,
  since: number, stallIsAbsent = false): Promise<number | undefined> {
  if (info.state.messages === 0) return undefined
  const stream = info.config.name
  const last = info.state.last_seq
  const start = new Date(Math.max(0, since - CLOCK_SLACK_S) * 1000).toISOString()
  const created = await jsm.consumers.add(stream, {
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: start,
    ack_policy: AckPolicy.None,
    headers_only: true,
    filter_subject: COMMAND_SUBJECT,
    inactive_threshold: nanos(10_000), // one this process lost sight of goes by itself
    mem_storage: true
  })
  let read = 0 // messages this scan read, in the consumer's sequence
  try {
    const consumer = await js.consumers.get(stream, created.name)
    for (;;) {
      let got = 0
      try {
        const batch = await consumer.fetch({ max_messages: BATCH, expires: QUIET_MS })
        for await (const m of batch) {
          got++
          read++
          if (m.info.deliverySequence !== read) {
            throw new LookupStalledError(`the lookup of ${cid} missed messages: consumer seq ${m.info.deliverySequence} after ${read - 1}`)
          }
          if (m.headers?.get(CID_HEADER) === cid) return m.seq
          if (m.seq >= last) return undefined
        }
      } catch (err) {
        if (err instanceof LookupStalledError) throw err
        if (stallIsAbsent) return undefined
        throw new LookupStalledError(`the lookup of ${cid} stalled: ${(err as Error).name}: ${(err as Error).message}`)
      }
      if (got > 0) continue
      if (stallIsAbsent) return undefined // the planted bug stall-is-absent (bugs.ts): silence taken for absence
      // A quiet second: nothing more was stored since `since`, or NATS stalled mid-scan; only the consumer
      // can tell. Taking a stall for "absent" would publish the intent a second time past the window.
      let state
      try {
        state = await consumer.info()
      } catch (err) {
        throw new LookupStalledError(`the lookup of ${cid} stalled: ${(err as Error).name}`)
      }
      const delivered = state.delivered.consumer_seq
      if (state.num_pending === 0 && delivered === read) return undefined
      throw new LookupStalledError(`the lookup of ${cid} stalled: read ${read} of ${delivered} delivered, ${state.num_pending} more unread`)
    }
  } finally {
    await jsm.consumers.delete(stream, created.name).catch(() => {})
  }
}
