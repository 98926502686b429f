/**
 * The lookup past the duplicate window (lookup.ts) against a real nats-server: found, absent only once
 * the consumer confirms the scan read all it delivered, and a NATS that stalls mid-scan is no answer.
 */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { connect, headers, type NatsConnection } from '@nats-io/transport-node'
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream'
import {
  CID_HEADER, COMMAND_SUBJECT, findInStream, firstAttempt, isReplay, landsAt, LookupStalledError, monotonicNow, pastWindow
} from '../src/index.js'
import { Nats } from './nats-process.js'

let nats: Nats
let nc: NatsConnection
let js: JetStreamClient
let jsm: JetStreamManager
const stored: Record<string, number> = {}

before(async () => {
  nats = await Nats.launch()
  nc = await connect({ servers: nats.url, timeout: 1000 })
  js = jetstream(nc, { timeout: 2000 })
  jsm = await jetstreamManager(nc, { timeout: 2000 })
  await jsm.streams.add({ name: 'SENTIMENT', subjects: ['root.solar.command.>'] })
  for (const cid of ['a', 'b', 'c']) {
    const h = headers()
    h.set(CID_HEADER, cid)
    stored[cid] = (await js.publish(COMMAND_SUBJECT, '{}', { msgID: cid, headers: h })).seq
  }
})

after(async () => {
  nats?.pause(false)
  await nc?.close()
  await nats?.remove()
})

test('a message stored since the first attempt is found by its Correlation-Id', async () => {
  const info = await jsm.streams.info('SENTIMENT')
  assert.equal(await findInStream(js, jsm, info, 'b', Date.now() / 1000 - 60), stored.b)
  assert.equal(await findInStream(js, jsm, info, 'zzz', Date.now() / 1000 - 60), undefined, 'scanned to the last seq')
})

test('nothing stored since: absent after a quiet second, once the consumer confirms it; its consumer is gone', async () => {
  const info = await jsm.streams.info('SENTIMENT')
  const t0 = Date.now()
  assert.equal(await findInStream(js, jsm, info, 'a', Date.now() / 1000 + 60), undefined)
  assert.ok(Date.now() - t0 >= 900, 'waited for the quiet second')
  assert.equal((await jsm.streams.info('SENTIMENT')).state.consumer_count, 0)
})

test('NATS paused mid-scan: LookupStalledError, not "absent"', async () => {
  const info = await jsm.streams.info('SENTIMENT')
  const scan = findInStream(js, jsm, info, 'a', Date.now() / 1000 + 60)
  setTimeout(() => { nats.pause(true) }, 300)
  try {
    await assert.rejects(scan, LookupStalledError)
  } finally {
    nats.pause(false)
  }
})

test("the window's rule: a replay's age counts to when its publish lands", () => {
  const now = 1000
  const d = { type: 'decision', cid: 'x', key: 'k', value: 1, proposer: 'p', decided_at: 0, first_attempt_at: 990, attempt: 2 } as const
  assert.equal(firstAttempt({ ...d, first_attempt_age_s: 5 }, 1, now), 994, 'from the age, aged by the wait here')
  assert.equal(firstAttempt(d, 1, now), 990, 'first_attempt_at only without an age')
  assert.equal(firstAttempt({ ...d, first_attempt_at: NaN }, 0, now), undefined)
  assert.ok(landsAt(monotonicNow(), 300, now) >= now + 0.3)
  assert.equal(pastWindow(800, 1000, 2), true)
  assert.equal(pastWindow(998.3, 1000, 2), false)
  assert.equal(pastWindow(998.1, 1000, 2), true, 'past 90 % of the window')
  assert.equal(pastWindow(undefined, 1000, 2), true)
  assert.deepEqual([1, 2, 1.9, '3', 'x', null, undefined, true].map(isReplay), [false, true, false, true, true, true, false, false])
})
