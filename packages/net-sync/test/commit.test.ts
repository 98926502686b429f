/**
 * The commit client against netsync's own orchestrator (`python -m netsync orchestrator`) and a real
 * nats-server with JetStream: what it publishes is read back from the stream with nats.js.
 */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import {
  commitDecision, createNode, decisionFrame, fromJson, monotonicNow, peerIdForSeed, privateKeyForSeed, thisBoot,
  type FrameNode, type Pending
} from '../src/index.js'
import { startNatsServer, startNetsync, type NatsServer, type NetsyncAgent } from './helpers.js'

let nats: NatsServer
let orchestrator: NetsyncAgent
let agent: FrameNode
let nc: NatsConnection
const boot = thisBoot()

function entry (cid: string, over: Partial<Pending> = {}): Pending {
  const now = Date.now() / 1000
  return {
    cid, key: `k-${cid}`, value: 1, proposer: 'agent-1', decided_at: now, first_attempt_at: now, attempt: 1,
    first_attempt_mono: monotonicNow(), boot, ...over
  }
}

before(async () => {
  nats = await startNatsServer()
  orchestrator = await startNetsync<{ nats: boolean }>('orchestrator', 'orchestrator', { NETSYNC_NATS_URL: nats.url }, (h) => h.nats)
  agent = await createNode({ privateKey: await privateKeyForSeed('agent-1'), listen: '/ip4/127.0.0.1/tcp/0' })
  nc = await connect({ servers: nats.url })
})

after(async () => {
  await nc?.close()
  await agent?.stop()
  await orchestrator?.stop()
  await nats?.stop()
})

const options = { timeoutMs: 5000, boot }

test("a decision is committed into the stream with the contract's subject, headers and body", async () => {
  const e = entry('commit-1', { value: 9223372036854775807n, key: 'ключ ☀' })
  const r = await commitDecision(agent, orchestrator.peer, e, options)
  assert.ok(r.committed, JSON.stringify(r))
  assert.equal(r.duplicate, false)
  const jsm = await jetstreamManager(nc)
  const m = await jsm.streams.getMessage('SENTIMENT', { seq: r.seq })
  assert.ok(m !== null)
  assert.equal(m.subject, 'root.solar.command.sentiment.set')
  assert.equal(m.header?.get('Nats-Msg-Id'), 'commit-1')
  assert.equal(m.header?.get('Correlation-Id'), 'commit-1')
  assert.deepEqual(fromJson(m.string()), { cid: 'commit-1', key: 'ключ ☀', value: 9223372036854775807n, proposer: 'agent-1', decided_at: e.decided_at })
})

test('a replay inside the duplicate window gets the first seq back, marked duplicate; nothing is stored twice', async () => {
  const e = entry('commit-2')
  const first = await commitDecision(agent, orchestrator.peer, e, options)
  const replay = await commitDecision(agent, orchestrator.peer, { ...e, attempt: 2 }, options)
  assert.ok(first.committed && replay.committed)
  assert.equal(replay.seq, first.seq)
  assert.equal(replay.duplicate, true)
  const info = await (await jetstreamManager(nc)).streams.info('SENTIMENT')
  assert.equal(info.state.last_seq, first.seq)
})

test('the frame carries first_attempt_age_s from this agent\'s clocks', () => {
  const f = decisionFrame(entry('age', { first_attempt_mono: monotonicNow() - 12 }), boot)
  assert.ok(f.first_attempt_age_s !== undefined && f.first_attempt_age_s >= 12 && f.first_attempt_age_s < 13)
  assert.deepEqual(Object.keys(f), ['type', 'cid', 'key', 'value', 'proposer', 'decided_at', 'first_attempt_at', 'first_attempt_age_s', 'attempt'])
})

test('a cid off the rule is refused as invalid by the orchestrator, and nothing is published', async () => {
  const before = (await (await jetstreamManager(nc)).streams.info('SENTIMENT')).state.messages
  const r = await commitDecision(agent, orchestrator.peer, entry('bad\n'), options)
  assert.deepEqual(r, { committed: false, status: 'invalid', error: 'cid must be 1 to 64 characters of A-Z a-z 0-9 . _ : -' })
  assert.equal((await (await jetstreamManager(nc)).streams.info('SENTIMENT')).state.messages, before)
})

test('an orchestrator nobody listens for is unreachable', async () => {
  const nobody = { addr: multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${(await peerIdForSeed('orchestrator-2')).toString()}`) }
  const r = await commitDecision(agent, nobody, entry('commit-3'), options)
  assert.equal(r.committed, false)
  assert.equal(!r.committed && r.status, 'unreachable')
})

test('with NATS down the orchestrator answers nats-unavailable, which the agent will buffer', async () => {
  await nc.close()
  await nats.stop()
  const r = await commitDecision(agent, orchestrator.peer, entry('commit-4'), options)
  assert.equal(r.committed, false, JSON.stringify(r))
  assert.equal(!r.committed && r.status, 'nats-unavailable')
})
