/**
 * The wire format of `/root-solar/sentiment/1.0.0` and `/root-solar/decision/1.0.0` (docs/contract.md,
 * "Intent" and "Commitment"): each frame is a 4-byte big-endian length, then that many bytes of UTF-8
 * JSON holding one object, at most 64 KiB. Transport-free: the libp2p node (node.ts) feeds it bytes.
 *
 * Numbers: an integer whose literal a JS number cannot hold exactly (past 2^53) is read as a bigint and
 * written back digit for digit, so a 64-bit `value` crosses unchanged; a number written with a fraction
 * or an exponent (`1.0`, `1e3`) is not an integer, as netsync's Python reads it (isJsonInteger).
 */

export const SENTIMENT_PROTOCOL = '/root-solar/sentiment/1.0.0'
export const DECISION_PROTOCOL = '/root-solar/decision/1.0.0'

/** The largest frame body, in bytes. */
export const MAX_FRAME = 64 * 1024

/** The request id a multiplexed stream's answers are matched by. */
export const RID = 'rid'

export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject
export interface JsonObject { [key: string]: JsonValue | undefined }

/** A frame that cannot be read or written: too large, not UTF-8 JSON, not an object, or cut short. */
export class FrameError extends Error {
  override name = 'FrameError'
}

/** `CID_RULE`'s pattern, matched against the whole string (no trailing newline slips through). */
export const CID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/
export const CID_RULE = '1 to 64 characters of A-Z a-z 0-9 . _ : -'

export function isValidCid (cid: unknown): cid is string {
  // JS's `$` without the m flag matches only at the very end: "abc\n" fails, as it must.
  return typeof cid === 'string' && CID_PATTERN.test(cid)
}

// -- messages --------------------------------------------------------------------------------------

/** Either protocol: `{"type": "ping"}` is answered `{"type": "pong"}`. */
export interface Ping { type: 'ping', cid?: string }
export interface Pong { type: 'pong', voter?: string }

/** sentiment: the proposer's request to a peer. */
export interface Propose { type: 'propose', cid: string, key: string, value: bigint | number, proposer: string }
/** sentiment: the peer's answer. */
export interface Vote { cid: string, vote: 'agree' | 'disagree', voter: string, reason?: string }

/** decision: the agent's request to the orchestrator (times in Unix seconds). */
export interface Decision {
  type: 'decision'
  cid: string
  key: string
  value: bigint | number
  proposer: string
  decided_at: number
  first_attempt_at: number
  first_attempt_age_s?: number
  attempt: number
}
/** decision: the orchestrator's answer. */
export type DecisionAnswer =
  | { cid: string, status: 'committed', seq: number, duplicate: boolean }
  | { cid: string, status: 'nats-unavailable', error: string }
  | { cid: string, status: 'invalid', error: string }

/** Either protocol: a handler that failed; the stream stays open. */
export interface HandlerError { cid: JsonValue | undefined, error: string }

// -- numbers ---------------------------------------------------------------------------------------

const INTEGER_LITERAL = /^-?\d+$/
/** The keys of each decoded object whose number was written with a fraction or an exponent. */
const notIntegers = new WeakMap<object, Set<string>>()

function reviver (this: JsonObject, key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== 'number' || context?.source === undefined) return value
  if (INTEGER_LITERAL.test(context.source)) {
    return Number.isSafeInteger(value) ? value : BigInt(context.source)
  }
  let keys = notIntegers.get(this)
  if (keys === undefined) notIntegers.set(this, keys = new Set())
  keys.add(key)
  return value
}

/** True when `obj[key]` is an integer as JSON wrote it: digits only, of any size. */
export function isJsonInteger (obj: JsonObject, key: string): boolean {
  const v = obj[key]
  if (typeof v === 'bigint') return true
  return typeof v === 'number' && Number.isInteger(v) && notIntegers.get(obj)?.has(key) !== true
}

/** A bigint as its digits, a safe integer unchanged (for values that may be either). */
export function toBigInt (v: bigint | number): bigint {
  return typeof v === 'bigint' ? v : BigInt(v)
}

/** JSON.rawJSON (Node 22's V8; TypeScript's lib has it only in esnext). */
const rawJSON = (JSON as unknown as { rawJSON: (text: string) => unknown }).rawJSON

function replacer (_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? rawJSON(value.toString()) : value
}

// -- frames ----------------------------------------------------------------------------------------

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

/** JSON text of `obj`, bigints written as their digits. */
export function toJson (obj: JsonValue | object): string {
  return JSON.stringify(obj, replacer)
}

/** JSON text as netsync reads it: bigints past 2^53, integers told from `1.0`. */
export function fromJson (text: string): JsonValue {
  return JSON.parse(text, reviver as (this: unknown, key: string, value: unknown) => unknown) as JsonValue
}

/** One frame: the 4-byte big-endian length, then the UTF-8 JSON of `obj`. */
export function encodeFrame (obj: object): Uint8Array {
  const body = utf8.encode(toJson(obj))
  if (body.length > MAX_FRAME) {
    throw new FrameError(`frame of ${body.length} bytes exceeds ${MAX_FRAME}`)
  }
  const frame = new Uint8Array(4 + body.length)
  new DataView(frame.buffer).setUint32(0, body.length, false)
  frame.set(body, 4)
  return frame
}

/** A frame's body (without its length) as the object it holds. */
export function decodeFrameBody (body: Uint8Array): JsonObject {
  let text: string
  try {
    text = utf8Strict.decode(body)
  } catch {
    throw new FrameError('frame is not UTF-8')
  }
  let obj: JsonValue
  try {
    obj = fromJson(text)
  } catch (err) {
    throw new FrameError(`frame is not JSON: ${(err as Error).message}`)
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new FrameError('frame is not a JSON object')
  }
  return obj
}

export type Chunk = Uint8Array | { subarray: () => Uint8Array }

/** Splits a byte stream into frames, whatever the chunks' boundaries. */
export class FrameDecoder {
  private buf: Uint8Array = new Uint8Array(0)

  /** Bytes held that do not make a whole frame yet. */
  get pending (): number {
    return this.buf.length
  }

  /** Add `chunk`; returns every frame now complete, in order. */
  push (chunk: Chunk): JsonObject[] {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
    if (this.buf.length === 0) {
      this.buf = bytes
    } else {
      const joined = new Uint8Array(this.buf.length + bytes.length)
      joined.set(this.buf)
      joined.set(bytes, this.buf.length)
      this.buf = joined
    }
    const frames: JsonObject[] = []
    let at = 0
    while (this.buf.length - at >= 4) {
      const size = new DataView(this.buf.buffer, this.buf.byteOffset + at, 4).getUint32(0, false)
      if (size > MAX_FRAME) {
        throw new FrameError(`frame of ${size} bytes exceeds ${MAX_FRAME}`)
      }
      if (this.buf.length - at < 4 + size) break
      frames.push(decodeFrameBody(this.buf.subarray(at + 4, at + 4 + size)))
      at += 4 + size
    }
    this.buf = this.buf.slice(at)
    return frames
  }

  /** The source ended: an error when it ended inside a frame. */
  end (): void {
    if (this.buf.length > 0) {
      throw new FrameError(`stream ended inside a frame (${this.buf.length} bytes buffered)`)
    }
  }
}

/** The frames of `source` (a libp2p stream, say), in order, until it ends. */
export async function * readFrames (source: AsyncIterable<Chunk>): AsyncGenerator<JsonObject> {
  const decoder = new FrameDecoder()
  for await (const chunk of source) {
    yield * decoder.push(chunk)
  }
  decoder.end()
}

// -- reading requests as the contract defines them ---------------------------------------------------

/** A propose request's fields, or a reason it is not one. */
export function readPropose (frame: JsonObject): Propose | { invalid: string } {
  if (frame.type !== 'propose') return { invalid: 'expected a propose frame' }
  const { cid, key, value, proposer } = frame
  if (typeof cid !== 'string') return { invalid: 'cid is not a string' }
  if (typeof key !== 'string') return { invalid: 'key is not a string' }
  if (!isJsonInteger(frame, 'value')) return { invalid: 'value is not an integer' }
  return { type: 'propose', cid, key, value: value as bigint | number, proposer: typeof proposer === 'string' ? proposer : '' }
}

/** Python's falsiness, which netsync's orchestrator tests a decision's cid by. */
function pyFalsy (v: JsonValue | undefined): boolean {
  if (v === undefined || v === null || v === false || v === '' || v === 0 || v === 0n) return true
  if (Array.isArray(v)) return v.length === 0
  return typeof v === 'object' && Object.keys(v).length === 0
}

/** A decision request's fields, or the orchestrator's `invalid` answer's error (nothing is published). */
export function readDecision (frame: JsonObject): Decision | { invalid: string } {
  const { cid, key, value } = frame
  if (frame.type !== 'decision' || pyFalsy(cid) || !('key' in frame) || !('value' in frame)) {
    return { invalid: 'expected a decision frame with cid, key, value' }
  }
  if (!isValidCid(cid)) return { invalid: `cid must be ${CID_RULE}` }
  const num = (k: string): number => (typeof frame[k] === 'number' ? frame[k] : Number(frame[k] ?? 0))
  const decision: Decision = {
    type: 'decision',
    cid,
    key: key as string,
    value: value as bigint | number,
    proposer: typeof frame.proposer === 'string' ? frame.proposer : '',
    decided_at: num('decided_at'),
    first_attempt_at: num('first_attempt_at'),
    attempt: typeof frame.attempt === 'number' ? frame.attempt : 1
  }
  if (typeof frame.first_attempt_age_s === 'number') decision.first_attempt_age_s = frame.first_attempt_age_s
  return decision
}
