/**
 * An intent as the agent's HTTP API takes it (docs/contract.md, "Agent HTTP API"): the body of
 * `POST /intents`, `{"key": str, "value": int, "cid": str?}`, read or refused with a 400 naming the field,
 * in netsync's words (netsync/intents.py parse_intent), and the cid an intent gets when it has none.
 */
import { randomBytes } from 'node:crypto'
import { CID_PATTERN, CID_RULE, fromJson, isJsonInteger, isValidCid, type JsonObject, type JsonValue } from './wire.js'

/** Python's default limit on an integer's digits (sys.get_int_max_str_digits), which netsync's 400 names. */
export const MAX_INT_DIGITS = 4300
export const MAX_KEY_CHARS = 128

/** A malformed body: `field` names what is wrong (`body`, `key`, `value`, `cid`, or an unknown field). */
export class BadRequestError extends Error {
  override name = 'BadRequestError'

  constructor (readonly field: string, message: string) {
    super(message)
  }

  /** The 400's body. */
  toJSON (): { error: string, field: string } {
    return { error: this.message, field: this.field }
  }
}

export interface Intent {
  key: string
  value: bigint
  /** absent (or null) in the body: the agent makes one (newCid) */
  cid?: string
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true })
const BODY = 'body must be a JSON object {key, value, cid?}'

/** cid-dollar-anchor (bugs.ts): the m flag lets `$` match before a newline, so `abc\n` passes. */
const CID_DOLLAR_ANCHORED = new RegExp(CID_PATTERN.source, 'm')

/** The intent in a `POST /intents` body, or a BadRequestError naming the field, checked in netsync's order.
 * `bugs`: the agent's planted bugs (bugs.ts). */
export function parseIntent (body: Uint8Array, bugs: ReadonlySet<string> = new Set()): Intent {
  let obj: JsonValue
  try {
    obj = fromJson(utf8Strict.decode(body)) // a UTF-8 BOM is skipped, as Python's json does
  } catch {
    throw new BadRequestError('body', BODY)
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new BadRequestError('body', BODY)
  const o: JsonObject = obj
  const key = o.key
  // characters are code points, as Python counts them (an emoji is one, not two UTF-16 units)
  if (typeof key !== 'string' || key.length === 0 || [...key].length > MAX_KEY_CHARS) {
    throw new BadRequestError('key', `key is required: a string of 1 to ${MAX_KEY_CHARS} characters`)
  }
  if (!key.isWellFormed()) {
    throw new BadRequestError('key', 'key must be valid Unicode: no lone surrogate (\\ud800-\\udfff)')
  }
  const value = o.value
  if (typeof value === 'bigint' && (value < 0n ? -value : value).toString().length > MAX_INT_DIGITS) {
    throw new BadRequestError('value', `value is an integer of at most ${MAX_INT_DIGITS} digits`)
  }
  if (!isJsonInteger(o, 'value')) throw new BadRequestError('value', 'value is required: an integer')
  const cid = o.cid
  const cidOk = bugs.has('cid-dollar-anchor') ? (c: unknown) => typeof c === 'string' && CID_DOLLAR_ANCHORED.test(c) : isValidCid
  if (cid !== undefined && cid !== null && !cidOk(cid)) {
    throw new BadRequestError('cid', `cid, when given, is ${CID_RULE}`)
  }
  const unknown = Object.keys(o).filter((k) => k !== 'key' && k !== 'value' && k !== 'cid').sort()
  if (unknown.length > 0) throw new BadRequestError(unknown[0]!, 'unknown field; allowed: key, value, cid')
  const intent: Intent = { key, value: typeof value === 'bigint' ? value : BigInt(value as number) }
  if (typeof cid === 'string') intent.cid = cid
  return intent
}

/** A cid for an intent that came without one: time-ordered and unique (milliseconds, then 64 random bits). */
export function newCid (): string {
  return Date.now().toString(16).padStart(12, '0') + randomBytes(8).toString('hex')
}
