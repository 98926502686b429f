/**
 * The clocks that age a replay (docs/contract.md, "Exactly once"): `first_attempt_age_s` is never
 * fewer seconds than really passed since the first attempt, whatever the wall clock did meanwhile.
 */
import { readFileSync } from 'node:fs'
import type { Pending } from './buffer.js'

/** The age of a replay no clock can vouch for: past any duplicate window (ten years). */
export const UNTRUSTED_AGE_S = 10 * 365 * 86400

/** CLOCK_MONOTONIC in seconds: Python's time.monotonic() on Linux, comparable across processes of one boot. */
export function monotonicNow (): number {
  return Number(process.hrtime.bigint()) / 1e9
}

/** The kernel's id of this boot, or an id of this process alone when it cannot be read. */
export function thisBoot (): string {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    if (id !== '') return id
  } catch {}
  return `process-${process.pid}-${process.hrtime.bigint()}`
}

/**
 * Seconds since `entry`'s first attempt (`first_attempt_age_s`), never fewer than it really is
 * (docs/contract.md, "Exactly once"): the monotonic clock when the first attempt was read in this boot
 * (the larger of it and the wall clock's age: the monotonic clock stops while a host is suspended),
 * else UNTRUSTED_AGE_S, so the orchestrator looks the replay up in the whole stream.
 */
export function firstAttemptAge (entry: Pending, boot: string): number {
  const now = monotonicNow()
  if (entry.first_attempt_mono === null || entry.boot !== boot || entry.first_attempt_mono > now) {
    return UNTRUSTED_AGE_S
  }
  return Math.max(now - entry.first_attempt_mono, Date.now() / 1000 - entry.first_attempt_at)
}
