import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BadRequestError, newCid, parseIntent, isValidCid } from '../src/index.js'
import { python } from './helpers.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

/** Bodies at the edges of the contract's rules, each judged by netsync's parse_intent and by ours. */
const BODIES: Uint8Array[] = [
  '{"key": "k", "value": 1}',
  '{"key": "k", "value": -9223372036854775808, "cid": "abc"}',
  '{"key": "k", "value": 9223372036854775808}',
  `{"key": "k", "value": ${'9'.repeat(4300)}}`,
  `{"key": "k", "value": ${'9'.repeat(4301)}}`,
  `{"key": "k", "value": -${'9'.repeat(4300)}}`,
  `{"key": "k", "value": -${'9'.repeat(4301)}}`,
  '{"key": "k", "value": 1.0}',
  '{"key": "k", "value": 1e3}',
  '{"key": "k", "value": -0}',
  '{"key": "k", "value": true}',
  '{"key": "k", "value": "1"}',
  '{"key": "k", "value": null}',
  '{"key": "k"}',
  '{"value": 1}',
  '{"key": "", "value": 1}',
  `{"key": "${'k'.repeat(128)}", "value": 1}`,
  `{"key": "${'k'.repeat(129)}", "value": 1}`,
  `{"key": "${'😀'.repeat(128)}", "value": 1}`,
  `{"key": "${'😀'.repeat(129)}", "value": 1}`,
  '{"key": "\\ud800", "value": 1}',
  '{"key": "a\\udfffb", "value": 1}',
  '{"key": "\\ud83d\\ude00", "value": 1}',
  '{"key": 5, "value": 1}',
  '{"key": "k", "value": 1, "cid": null}',
  '{"key": "k", "value": 1, "cid": ""}',
  `{"key": "k", "value": 1, "cid": "${'c'.repeat(64)}"}`,
  `{"key": "k", "value": 1, "cid": "${'c'.repeat(65)}"}`,
  '{"key": "k", "value": 1, "cid": "abc\\n"}',
  '{"key": "k", "value": 1, "cid": "a b"}',
  '{"key": "k", "value": 1, "cid": 7}',
  '{"key": "k", "value": 1, "cid": "A.b_c:d-9"}',
  '{"key": "k", "value": 1, "zeta": 1, "alpha": 2}',
  '{"key": "k", "value": 1, "key": "j"}',
  '{"key": 1, "value": "x", "cid": "", "extra": 1}',
  '[1, 2]',
  '"text"',
  'null',
  '',
  '{"key": "k", "value": 1',
  '\ufeff{"key": "k", "value": 1}',
  `{"key": "k", "value": 1, "x": ${'['.repeat(30000)}${']'.repeat(30000)}}`
].map(enc).concat([
  new Uint8Array([0x7b, 0x22, 0x6b, 0x65, 0x79, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]) // {"key":"\xff"}: not UTF-8
])

type Verdict = ['ok', string, string, string | null] | ['bad', string, string]

function ours (body: Uint8Array): Verdict {
  try {
    const i = parseIntent(body)
    return ['ok', i.key, i.value.toString(), i.cid ?? null]
  } catch (e) {
    assert.ok(e instanceof BadRequestError, String(e))
    return ['bad', e.field, e.message]
  }
}

test("every edge body is judged as netsync's parse_intent judges it: the same intent, or a 400 naming the same field", () => {
  const theirs = JSON.parse(python(`
import base64, json, sys
from netsync.intents import BadRequest, parse_intent
out = []
for b in json.loads(sys.argv[1]):
    try:
        key, value, cid = parse_intent(base64.b64decode(b))
        out.append(["ok", key.encode("utf-16", "surrogatepass").decode("utf-16"), str(value), cid])
    except BadRequest as e:
        out.append(["bad", e.field, str(e)])
print(json.dumps(out))
`, BODIES.map((b) => Buffer.from(b).toString('base64')))) as Verdict[]
  assert.equal(theirs.length, BODIES.length)
  for (const [i, body] of BODIES.entries()) {
    assert.deepEqual(ours(body), theirs[i], `body ${i}: ${new TextDecoder().decode(body).slice(0, 80)}`)
  }
})

test('a body that is not UTF-8 is malformed, as the contract says, in both implementations', () => {
  const utf16 = new Uint8Array(Buffer.from('\ufeff{"key": "k", "value": 1}', 'utf16le'))
  assert.deepEqual(ours(utf16), ['bad', 'body', 'body must be a JSON object {key, value, cid?}'])
  const theirs = python(`
import base64, json, sys
from netsync.intents import BadRequest, parse_intent
try:
    parse_intent(base64.b64decode(json.loads(sys.argv[1])))
except BadRequest as e:
    print(e.field)
`, Buffer.from(utf16).toString('base64')).trim()
  assert.equal(theirs, 'body', 'netsync refuses a UTF-16 body too (CONTRACT-NOTES item 21, fixed)')
})

test('NaN and Infinity are not JSON: a 400 naming the body, in both implementations', () => {
  for (const v of ['NaN', 'Infinity', '-Infinity']) {
    assert.deepEqual(ours(enc(`{"key": "k", "value": ${v}}`)), ['bad', 'body', 'body must be a JSON object {key, value, cid?}'])
  }
  const theirs = python(`
from netsync.intents import BadRequest, parse_intent
for v in (b'NaN', b'Infinity', b'-Infinity'):
    try:
        parse_intent(b'{"key": "k", "value": ' + v + b'}')
    except BadRequest as e:
        print(e.field)
`).trim()
  assert.equal(theirs, 'body\nbody\nbody', 'netsync names the body too (CONTRACT-NOTES item 9, fixed)')
})

test('the 400 body is {"error", "field"}', () => {
  assert.equal(JSON.stringify(new BadRequestError('key', 'key is required')), '{"error":"key is required","field":"key"}')
})

test('a generated cid keeps the rule, is unique, and sorts by time', async () => {
  const a = newCid()
  await new Promise((resolve) => setTimeout(resolve, 3))
  const b = newCid()
  assert.ok(isValidCid(a) && isValidCid(b))
  assert.match(a, /^[0-9a-f]{28}$/)
  assert.ok(a < b)
  assert.equal(new Set(Array.from({ length: 1000 }, newCid)).size, 1000)
})
