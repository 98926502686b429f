import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  decodeFrameBody, encodeFrame, FrameDecoder, FrameError, fromJson, isJsonInteger, isValidCid, MAX_FRAME,
  readDecision, readFrames, readPropose, toJson, type JsonObject
} from '../src/index.js'
import { python } from './helpers.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'))

/** Frames as the contract's messages look on the wire, with the edges: a 64-bit value, non-ASCII text. */
const MESSAGES: JsonObject[] = [
  { type: 'propose', cid: '01JF3Z.x:y_z-9', key: 'k☀ünï', value: 9223372036854775807n, proposer: 'agent-1', rid: 7 },
  { cid: 'c1', vote: 'agree', voter: 'agent-2', rid: 7 },
  { cid: 'c1', vote: 'disagree', voter: 'agent-3', reason: 'value outside [-1000000, 1000000]' },
  {
    type: 'decision', cid: 'c2', key: 'k', value: -9223372036854775808n, proposer: 'agent-1', decided_at: 1765000000.25,
    first_attempt_at: 1765000000.25, first_attempt_age_s: 0.001, attempt: 2, rid: 1
  },
  { cid: 'c2', status: 'committed', seq: 42, duplicate: false },
  { type: 'ping', cid: '-' },
  { type: 'pong' }
]

test('netsync reads our frames as the same objects, and we read its frames as the same objects', () => {
  const ours = MESSAGES.map((m) => hex(encodeFrame(m)))
  // netsync.wire.decode on each body (after checking the length prefix), then netsync.wire.encode of what it read.
  const out = JSON.parse(python(`
import json, sys
from netsync.wire import decode, encode
seen, frames = [], []
for h in json.loads(sys.argv[1]):
    b = bytes.fromhex(h)
    assert int.from_bytes(b[:4], "big") == len(b) - 4, "length prefix"
    obj = decode(b[4:])
    seen.append({k: type(v).__name__ for k, v in obj.items()})
    frames.append(encode(obj).hex())
print(json.dumps({"types": seen, "frames": frames}))
`, ours)) as { types: Array<Record<string, string>>, frames: string[] }
  assert.equal(out.types[0]?.value, 'int')
  assert.equal(out.types[3]?.value, 'int')
  assert.equal(out.types[3]?.decided_at, 'float')
  const back = out.frames.map((h) => {
    const frames = new FrameDecoder().push(unhex(h))
    assert.equal(frames.length, 1)
    return frames[0]
  })
  assert.deepEqual(back, MESSAGES)
})

test('a frame is a 4-byte big-endian length, then compact UTF-8 JSON', () => {
  const frame = encodeFrame({ cid: 'é', n: 1 })
  const body = new TextEncoder().encode('{"cid":"é","n":1}')
  assert.deepEqual([...frame.subarray(0, 4)], [0, 0, 0, body.length])
  assert.deepEqual(frame.subarray(4), body)
})

test('frames are found whatever the chunks: split at every byte, or many in one chunk', async () => {
  const bytes = new Uint8Array(Buffer.concat(MESSAGES.map((m) => encodeFrame(m))))
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new FrameDecoder()
    const got = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))]
    assert.deepEqual(got, MESSAGES)
    d.end()
  }
  async function * oneByteAtATime (): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < bytes.length; i++) yield bytes.subarray(i, i + 1)
  }
  const read: JsonObject[] = []
  for await (const f of readFrames(oneByteAtATime())) read.push(f)
  assert.deepEqual(read, MESSAGES)
})

test('64 KiB of body is the limit, on both sides', () => {
  const fits = { cid: 'x', pad: 'a'.repeat(MAX_FRAME - '{"cid":"x","pad":""}'.length) }
  assert.equal(encodeFrame(fits).length, 4 + MAX_FRAME)
  assert.deepEqual(new FrameDecoder().push(encodeFrame(fits)), [fits])
  assert.throws(() => encodeFrame({ ...fits, pad: fits.pad + 'a' }), (e: unknown) =>
    e instanceof FrameError && /65537 bytes exceeds 65536/.test(e.message))
  // a length over the limit is refused on its 4 bytes, before any body arrives
  assert.throws(() => new FrameDecoder().push(unhex('00010001')), /65537 bytes exceeds 65536/)
})

test('what is not a frame is a FrameError naming why', () => {
  const framed = (body: string | Uint8Array): Uint8Array => {
    const b = typeof body === 'string' ? new TextEncoder().encode(body) : body
    return new Uint8Array([0, 0, 0, b.length, ...b])
  }
  const cases: Array<[Uint8Array, RegExp]> = [
    [framed('{"cid": '), /not JSON/],
    [framed('[1, 2]'), /not a JSON object/],
    [framed('"cid"'), /not a JSON object/],
    [framed('NaN'), /not JSON/],
    [framed(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), /not UTF-8/]
  ]
  for (const [bytes, why] of cases) {
    assert.throws(() => new FrameDecoder().push(bytes), (e: unknown) => e instanceof FrameError && why.test(e.message))
  }
  const d = new FrameDecoder()
  assert.deepEqual(d.push(encodeFrame({ cid: 'a' }).subarray(0, 6)), [])
  assert.throws(() => d.end(), /stream ended inside a frame \(6 bytes buffered\)/)
})

test('integers: 64-bit values cross exactly; 1.0 and 1e3 are not integers, as Python reads them', () => {
  const obj = fromJson('{"a": 9007199254740993, "b": 5, "c": 1.0, "d": 1e3, "e": 2.5, "f": "5", "g": -0}') as JsonObject
  assert.equal(obj.a, 9007199254740993n)
  assert.equal(toJson(obj), '{"a":9007199254740993,"b":5,"c":1,"d":1000,"e":2.5,"f":"5","g":0}')
  assert.deepEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((k) => isJsonInteger(obj, k)),
    [true, true, false, false, false, false, true])
  const py = JSON.parse(python(`
import json, sys
from netsync.wire import decode
obj = decode(json.loads(sys.argv[1]).encode())
print(json.dumps({k: isinstance(v, int) and not isinstance(v, bool) for k, v in obj.items()}))
`, '{"a": 9007199254740993, "b": 5, "c": 1.0, "d": 1e3, "e": 2.5, "f": "5", "g": -0}')) as Record<string, boolean>
  assert.deepEqual(py, { a: true, b: true, c: false, d: false, e: false, f: false, g: true })
})

test('a propose frame is read with its value as an integer only', () => {
  const read = (s: string): ReturnType<typeof readPropose> => readPropose(decodeFrameBody(new TextEncoder().encode(s)))
  assert.deepEqual(read('{"type":"propose","cid":"c","key":"k","value":12,"proposer":"agent-1"}'),
    { type: 'propose', cid: 'c', key: 'k', value: 12, proposer: 'agent-1' })
  assert.deepEqual(read('{"type":"propose","cid":"c","key":"k","value":12.0,"proposer":"agent-1"}'), { invalid: 'value is not an integer' })
  assert.deepEqual(read('{"type":"propose","cid":"c","key":"k","value":true,"proposer":"agent-1"}'), { invalid: 'value is not an integer' })
  assert.deepEqual(read('{"type":"ping"}'), { invalid: 'expected a propose frame' })
})

test('a decision frame is refused as netsync refuses it: not a decision, or a cid off its rule', () => {
  const base = { type: 'decision', cid: 'c-1', key: 'k', value: 3, proposer: 'agent-1', decided_at: 1.5, first_attempt_at: 1.5, attempt: 1 }
  const d = readDecision(base)
  assert.ok(!('invalid' in d))
  assert.equal(d.cid, 'c-1')
  assert.equal(d.first_attempt_age_s, undefined)
  assert.equal((readDecision({ ...base, first_attempt_age_s: 0.5 }) as { first_attempt_age_s: number }).first_attempt_age_s, 0.5)
  const bad: JsonObject[] = [
    { ...base, type: 'propose' }, { ...base, cid: '' }, { ...base, cid: null }, { ...base, key: undefined },
    { type: 'decision', cid: 'c', key: 'k' }, { ...base, cid: 'abc\n' }, { ...base, cid: 'x'.repeat(65) }, { ...base, cid: 5 }
  ].map((o) => JSON.parse(JSON.stringify(o)) as JsonObject)
  const ours = bad.map((o) => { const r = readDecision(o); return 'invalid' in r ? r.invalid : null })
  // netsync's orchestrator itself: Orchestrator.on_decision answers these before it touches NATS
  const theirs = JSON.parse(python(`
import json, sys, trio
from netsync.orchestrator import Orchestrator
o = Orchestrator.__new__(Orchestrator)
answers = [trio.run(o.on_decision, d) for d in json.loads(sys.argv[1])]
assert all(a["status"] == "invalid" for a in answers), answers
print(json.dumps([a["error"] for a in answers]))
`, bad)) as Array<string | null>
  assert.deepEqual(ours, theirs)
  assert.ok(ours.every((e) => e !== null))
})

test('the cid rule is the whole string: 1 to 64 of A-Z a-z 0-9 . _ : -', () => {
  for (const ok of ['a', 'x'.repeat(64), 'A.b_c:d-9']) assert.ok(isValidCid(ok), ok)
  for (const no of ['', 'x'.repeat(65), 'abc\n', 'a b', 'é', 'a/b', 5, null]) assert.ok(!isValidCid(no), JSON.stringify(no))
})
