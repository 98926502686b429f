/**
 * The agent's replay (docs/contract.md, "Pending-commit buffer"): what the buffer holds goes to the
 * orchestrator again, head first, until it is committed, so commits keep decision order. Woken by a new
 * entry, it tries the head at once; after a failure it waits NETSYNC_REPLAY_INTERVAL_MS, doubling up to
 * 2 s, and a success resets the wait and moves on to the next entry at once. Each attempt is journaled
 * (bumpAttempt, fsynced) before it is sent, as netsync/replay.py does.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { PendingCommitBuffer, Pending } from './buffer.js'
import type { CommitResult } from './commit.js'

export const MAX_REPLAY_DELAY_MS = 2000

export interface ReplayOptions {
  /** NETSYNC_REPLAY_INTERVAL_MS: the first wait after a failure */
  intervalMs: number
  /** the longest wait (2 s) */
  maxDelayMs?: number
  /** sends one attempt (commit.ts: commitDecision with the agent's node and orchestrator) */
  commit: (entry: Pending) => Promise<CommitResult>
  /** the entry left the buffer, committed with `seq` (the agent's answer for its cid is now 200) */
  onCommitted?: (entry: Pending, seq: number) => void
  /** an attempt failed: the orchestrator's answer, or an error of the journal */
  onFailure?: (entry: Pending, why: CommitResult | Error) => void
}

export class ReplayLoop {
  private wakeUp: (() => void) | undefined

  constructor (private readonly buffer: PendingCommitBuffer, private readonly options: ReplayOptions) {}

  /** A new entry was appended: try the head now if the loop is idle. */
  wake (): void {
    this.wakeUp?.()
  }

  /** Replay until `signal` aborts; resolves then. Never ends on a failed attempt or journal write. */
  async run (signal: AbortSignal): Promise<void> {
    const maxDelay = this.options.maxDelayMs ?? MAX_REPLAY_DELAY_MS
    let delay = this.options.intervalMs
    const backOff = async (): Promise<void> => {
      await sleep(delay, undefined, { signal }).catch(() => {})
      delay = Math.min(delay * 2, maxDelay)
    }
    while (!signal.aborted) {
      const head = this.buffer.head()
      if (head === undefined) {
        const { promise, resolve } = Promise.withResolvers<void>()
        this.wakeUp = resolve
        const onAbort = (): void => resolve()
        signal.addEventListener('abort', onAbort, { once: true })
        if (this.buffer.head() === undefined) await promise
        signal.removeEventListener('abort', onAbort)
        this.wakeUp = undefined
        continue
      }
      let entry: Pending
      try {
        entry = await this.buffer.bumpAttempt(head.cid) // journaled before it is sent
      } catch (err) {
        this.options.onFailure?.(head, err as Error)
        await backOff()
        continue
      }
      const result = await this.options.commit(entry)
      if (!result.committed) {
        this.options.onFailure?.(entry, result)
        await backOff()
        continue
      }
      try {
        await this.buffer.complete(entry.cid, result.seq)
      } catch (err) {
        this.options.onFailure?.(entry, err as Error)
        if (this.buffer.contains(entry.cid)) { // still pending: its next replay is answered this seq
          await backOff()
          continue
        }
      }
      delay = this.options.intervalMs
      this.options.onCommitted?.(entry, result.seq)
    }
  }
}
