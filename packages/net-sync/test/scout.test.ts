/**
 * The scout's window (scout.ts) against netsync's own (netsync/telemetry.py Window): the same messages,
 * well-formed or not, give the same per-agent summary; an empty window publishes nothing; a summary NATS
 * cannot take is dropped.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeSample, Scout, TelemetryWindow, toJson, fromJson, type Summary } from '../src/index.js'
import { python } from './helpers.js'

/** Telemetry messages as they arrive on the topic: good samples, and what any peer could send instead. */
const MESSAGES: string[] = [
  '{"agent":"agent-1","t":1.5,"peers_reachable":2,"buffer_depth":0,"nats_reachable":true}',
  '{"agent":"agent-1","t":2.5,"peers_reachable":1,"buffer_depth":7,"nats_reachable":false}',
  '{"agent":"agent-1","t":3.5,"peers_reachable":2,"buffer_depth":3,"nats_reachable":true}',
  '{"agent":"agent-2","t":1.6,"peers_reachable":2,"buffer_depth":12345678901234567890,"nats_reachable":0}',
  '{"agent":"agent-2","peers_reachable":1.5,"buffer_depth":"9","nats_reachable":[]}',
  '{"agent":"agent-3"}',
  '{"agent":"agent-3","nats_reachable":{"a":1}}',
  '{"peers_reachable":4}',
  '{"agent":7,"buffer_depth":-2,"nats_reachable":"no"}',
  '{"agent":"ключ ☀","peers_reachable":-1,"nats_reachable":null}',
  'not json',
  '[1,2,3]',
  '"agent-9"',
  '{"agent":"agent-1"', // cut short
  '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'
]

const NETSYNC = `
import json, sys
from netsync.telemetry import Window, decode
w = Window(start=0.0)
for m in json.loads(sys.argv[1]):
    s = decode(m.encode())
    if s is not None:
        w.add(s)
print(json.dumps({"messages": w.messages, "agents": w.agents}))
`

test("the same messages give netsync's summary, agent by agent (bad ones heard and passed over alike)", () => {
  const window = new TelemetryWindow(0)
  for (const m of MESSAGES) {
    const sample = decodeSample(new TextEncoder().encode(m))
    if (sample !== undefined) window.add(sample)
  }
  const ours = fromJson(toJson({ messages: window.messages, agents: window.agents }))
  const theirs = fromJson(python(NETSYNC, MESSAGES).trim())
  assert.deepEqual(ours, theirs)
  assert.equal(window.messages, 10)
})

test('bytes that are not UTF-8 are no sample', () => {
  assert.equal(decodeSample(new Uint8Array([0x7b, 0xff, 0x7d])), undefined)
})

test('an interval in which nothing was heard publishes nothing; a summary NATS cannot take is dropped', async () => {
  const emitted: Summary[] = []
  let take = false
  const scout = new Scout(60_000, (s) => {
    if (!take) throw new Error('NATS down')
    emitted.push(s)
    return true
  })
  assert.equal(await scout.flush(), undefined)
  const internals = scout as unknown as { window: TelemetryWindow }
  internals.window.add({ agent: 'agent-1', buffer_depth: 3 })
  const dropped = await scout.flush()
  assert.equal(dropped?.messages, 1)
  assert.equal(emitted.length, 0)
  take = true
  assert.equal(await scout.flush(), undefined, 'the dropped window is not sent again')
  internals.window.add({ agent: 'agent-2', buffer_depth: 1 })
  const sent = await scout.flush()
  assert.deepEqual(emitted, [sent])
  assert.deepEqual(Object.keys(sent!.agents), ['agent-2'])
  assert.ok(sent!.window_end >= sent!.window_start)
})
