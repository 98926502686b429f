/**
 * What the projector can never write (docs/contract.md, "Dead letters"): a commitment body that is
 * malformed, checked before any write in netsync's order (netsync/projection.py parse_body), and the
 * dead letter's one error line. Whether a failed write was refused or met an outage is surreal.ts's.
 */
import type { Log } from './log.js'
import { INT64_MAX, INT64_MIN } from './config.js'
import { fromJson, isJsonInteger, type JsonObject, type JsonValue } from './wire.js'

/** A body no write can store; the message says why, in netsync's words. */
export class Malformed extends Error {
  override name = 'Malformed'
}

/** A message dead-lettered: `kind` is `malformed` (seen before writing) or `refused` (by SurrealDB), the
 * dead letter's `cause`. */
export class DeadLetter extends Error {
  override name = 'DeadLetter'
  constructor (readonly kind: 'malformed' | 'refused', reason: string, readonly attempts = 0) {
    super(reason)
  }
}

/** A commitment body as the projector writes it. */
export interface Commitment {
  cid: string
  key: string
  value: bigint | number
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true })
const utf8Lenient = new TextDecoder('utf-8')

/** The commitment in a stream message's body, or Malformed: not JSON, not an object, `cid` missing or
 * empty, `key` not a string, text with a lone surrogate, `value` not an integer or past 64 bits. */
export function parseBody (data: Uint8Array): Commitment {
  let body: JsonValue
  try {
    body = fromJson(utf8Strict.decode(data))
  } catch (err) {
    throw new Malformed(`body is not JSON: ${(err as Error).message}`)
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Malformed('body is not a JSON object')
  const o: JsonObject = body
  const { cid, key, value } = o
  if (typeof cid !== 'string' || cid === '') throw new Malformed('cid missing or not a non-empty string')
  if (typeof key !== 'string') throw new Malformed('key missing or not a string')
  for (const [name, text] of [['cid', cid], ['key', key]] as const) {
    // the SDK's CBOR would write a lone surrogate as U+FFFD: a row that differs from its message
    if (!text.isWellFormed()) throw new Malformed(`${name} is not valid Unicode (a lone surrogate)`)
  }
  if (!isJsonInteger(o, 'value')) throw new Malformed('value missing or not an integer')
  const v = value as bigint | number
  if (BigInt(v) < INT64_MIN || BigInt(v) > INT64_MAX) {
    throw new Malformed(`value ${v} is outside the 64-bit integers SurrealDB stores`)
  }
  return { cid, key, value: v }
}

/** The cid a body names as a string, for the dead letter's line (none when it names none). */
function cidOf (data: Uint8Array): string | undefined {
  try {
    const body = fromJson(utf8Strict.decode(data))
    const cid = body !== null && typeof body === 'object' && !Array.isArray(body) ? body.cid : undefined
    return typeof cid === 'string' ? cid : undefined
  } catch {
    return undefined
  }
}

/** The dead letter's one error line: `{"msg": "dead-lettered", "cid", "seq", "reason", "attempts", "cause",
 * "body"}`, the body's first 200 bytes (a character cut there, or not UTF-8, becomes U+FFFD). */
export function logDeadLetter (log: Log, data: Uint8Array, seq: number, dead: DeadLetter): void {
  log.error('dead-lettered', {
    cid: cidOf(data),
    seq,
    reason: dead.message,
    attempts: dead.attempts,
    cause: dead.kind,
    body: utf8Lenient.decode(data.subarray(0, 200))
  })
}
