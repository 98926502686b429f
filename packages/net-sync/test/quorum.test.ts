import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { multiaddr } from '@multiformats/multiaddr'
import {
  createNode, fromJson, gatherQuorum, peerIdForSeed, privateKeyForSeed, serveVotes, Votes, SENTIMENT_PROTOCOL,
  type FrameNode, type JsonObject
} from '../src/index.js'
import { startNetsyncAgent, type NetsyncAgent } from './helpers.js'

test('the voting rule: an integer within the range, one (key, value) per cid', () => {
  const v = new Votes(-10n, 10n)
  assert.deepEqual(v.vote('a', 'k', 10), { agree: true })
  assert.deepEqual(v.vote('a', 'k', 10), { agree: true }, 'the same proposal again')
  assert.deepEqual(v.vote('a', 'k', 9), { agree: false, reason: 'agreed to a different proposal under this cid' })
  assert.deepEqual(v.vote('a', 'other', 10), { agree: false, reason: 'agreed to a different proposal under this cid' })
  assert.deepEqual(v.vote('b', 'k', 11), { agree: false, reason: 'value outside [-10, 10]' })
  assert.deepEqual(v.vote('b', 'k', 9223372036854775807n), { agree: false, reason: 'value outside [-10, 10]' })
  assert.deepEqual(v.vote('b', 'k', undefined), { agree: false, reason: 'value is not an integer' })
  assert.deepEqual(v.vote('b', 'k', -10), { agree: true }, 'a disagreement is not remembered')
})

test('a propose frame is answered by the rule; 1.0 and "5" are not integers', () => {
  const v = new Votes(-1000000n, 1000000n)
  const ask = (json: string): JsonObject => ({ ...v.answer(fromJson(json) as JsonObject, 'agent-9') })
  assert.deepEqual(ask('{"type":"propose","cid":"c","key":"k","value":5,"proposer":"agent-1"}'), { cid: 'c', vote: 'agree', voter: 'agent-9' })
  assert.deepEqual(ask('{"type":"propose","cid":"d","key":"k","value":5.0,"proposer":"agent-1"}'),
    { cid: 'd', vote: 'disagree', voter: 'agent-9', reason: 'value is not an integer' })
  assert.deepEqual(ask('{"type":"propose","cid":"d","key":"k","value":"5","proposer":"agent-1"}'),
    { cid: 'd', vote: 'disagree', voter: 'agent-9', reason: 'value is not an integer' })
})

test('votes are kept for the last 20,000 cids by default, the oldest forgotten first', () => {
  const v = new Votes(0n, 100n, 3)
  for (const cid of ['a', 'b', 'c']) v.vote(cid, 'k', 1)
  v.vote('a', 'k', 1) // agreeing again does not make 'a' younger
  v.vote('d', 'k', 1)
  assert.deepEqual(v.vote('a', 'k', 2), { agree: true }, 'a was forgotten')
  assert.deepEqual(v.vote('c', 'k', 2), { agree: false, reason: 'agreed to a different proposal under this cid' })
  assert.equal(new Votes(0n, 1n).kept, 20_000)
})

// A proposer of ours, two netsync agents as its peers (agent-3's range ends at 10), a js voter that
// answers late, and an address where nobody listens.
let proposer: FrameNode
let slow: FrameNode
let agent2: NetsyncAgent
let agent3: NetsyncAgent
const votes = new Votes(-1000000n, 1000000n)

before(async () => {
  proposer = await createNode({ privateKey: await privateKeyForSeed('agent-1'), listen: '/ip4/127.0.0.1/tcp/0' })
  await serveVotes(proposer, votes, 'agent-1')
  slow = await createNode({ privateKey: await privateKeyForSeed('agent-5'), listen: '/ip4/127.0.0.1/tcp/0' })
  await slow.handle(SENTIMENT_PROTOCOL, async (req) => {
    await sleep(2000)
    return { cid: req.cid ?? null, vote: 'agree', voter: 'agent-5' }
  })
  const orchestrator = `/ip4/127.0.0.1/tcp/9/p2p/${(await peerIdForSeed('orchestrator')).toString()}`
  const common = { NETSYNC_ORCHESTRATOR: orchestrator, NETSYNC_PEERS: `agent-1=${proposer.addresses()[0]?.toString() ?? ''}` }
  ;[agent2, agent3] = await Promise.all([
    startNetsyncAgent('agent-2', common),
    startNetsyncAgent('agent-3', { ...common, NETSYNC_VALUE_MAX: '10' })
  ])
})

after(async () => {
  await Promise.all([agent2?.stop(), agent3?.stop(), proposer?.stop(), slow?.stop()])
})

const proposal = (cid: string, value: bigint | number): { cid: string, key: string, value: bigint | number, proposer: string } =>
  ({ cid, key: 'k', value, proposer: 'agent-1' })

test('netsync agents agree: all three of three decide', async () => {
  const r = await gatherQuorum(proposer, votes, proposal('q1', 5), { quorum: 3, timeoutMs: 5000, peers: [agent2.peer, agent3.peer] })
  assert.deepEqual(r, { decided: true, reason: '', agree: 3, need: 3 })
})

test("a netsync agent's disagreement makes the quorum impossible, in netsync's words", async () => {
  const r = await gatherQuorum(proposer, votes, proposal('q2', 50), { quorum: 3, timeoutMs: 5000, peers: [agent2.peer, agent3.peer] })
  assert.equal(r.decided, false)
  // agent-2's agreement may arrive before or after agent-3's disagreement, which settles it
  assert.match(r.reason, /^quorum impossible \([12]\/3 agreed\): agent-3: value outside \[-1000000, 10\]$/)
  const two = await gatherQuorum(proposer, votes, proposal('q3', 50), { quorum: 2, timeoutMs: 5000, peers: [agent2.peer, agent3.peer] })
  assert.equal(two.decided, true, 'the proposer and agent-2 are a quorum of 2')
})

test('netsync remembers what it agreed to under a cid; so does the proposer', async () => {
  await gatherQuorum(proposer, votes, proposal('q4', 1), { quorum: 3, timeoutMs: 5000, peers: [agent2.peer, agent3.peer] })
  // each netsync agent on its own (a quorum falls as impossible at the first disagreement)
  for (const agent of [agent2, agent3]) {
    const again = await gatherQuorum(proposer, new Votes(-1000000n, 1000000n), proposal('q4', 2), { quorum: 2, timeoutMs: 5000, peers: [agent.peer] })
    assert.deepEqual(again, {
      decided: false, reason: `quorum impossible (1/2 agreed): ${agent.name}: agreed to a different proposal under this cid`, agree: 1, need: 2
    })
  }
  const own = await gatherQuorum(proposer, votes, proposal('q4', 3), { quorum: 1, timeoutMs: 5000, peers: [] })
  assert.deepEqual(own, { decided: false, reason: 'quorum impossible (0/1 agreed): agent-1: agreed to a different proposal under this cid', agree: 0, need: 1 })
})

test('a 64-bit value crosses to netsync exactly: out of its range, not "not an integer"', async () => {
  const wide = new Votes(-(2n ** 63n), 2n ** 63n - 1n)
  for (const [agent, max] of [[agent2, 1000000], [agent3, 10]] as const) {
    const r = await gatherQuorum(proposer, wide, proposal(`q5-${agent.name}`, 2n ** 63n - 1n), { quorum: 2, timeoutMs: 5000, peers: [agent.peer] })
    assert.equal(r.reason, `quorum impossible (1/2 agreed): ${agent.name}: value outside [-1000000, ${max}]`)
  }
})

test('an unreachable peer counts against; a late one only runs the clock out', async () => {
  const nobody = { name: 'agent-4', addr: multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${(await peerIdForSeed('agent-4')).toString()}`) }
  const seen: Array<[string, boolean]> = []
  const r = await gatherQuorum(proposer, votes, proposal('q6', 7), {
    quorum: 3, timeoutMs: 5000, peers: [agent2.peer, nobody], onPeer: (name, ok) => seen.push([name, ok])
  })
  assert.equal(r.decided, false)
  // the refusal may come before or after agent-2's agreement; the decision does not wait for the latter
  assert.match(r.reason, /^quorum impossible \([12]\/3 agreed\): agent-4: unreachable \(.*ECONNREFUSED/)
  for (let i = 0; i < 50 && seen.length < 2; i++) await sleep(100) // requests still out are left to finish
  assert.deepEqual(seen.sort(), [['agent-2', true], ['agent-4', false]])
  const lateStarted = Date.now()
  const late = await gatherQuorum(proposer, votes, proposal('q7', 7), {
    quorum: 3, timeoutMs: 400, peers: [agent2.peer, { name: 'agent-5', addr: slow.addresses()[0]! }]
  })
  assert.deepEqual(late, { decided: false, reason: 'no quorum within 400 ms (2/3 agreed)', agree: 2, need: 3 })
  assert.ok(Date.now() - lateStarted < 1900, 'decided at the timeout, not when the late answer came')
})
