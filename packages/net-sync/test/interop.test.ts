/**
 * Interop with netsync's own agent (py-libp2p 0.8.1), started as `python -m netsync agent` from the
 * checkout's venv: it dials our nodes as its peer agent-2 and its orchestrator, and our node dials it.
 */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import {
  createNode, peerIdForSeed, privateKeyForSeed, readDecision, readPropose, DECISION_PROTOCOL, SENTIMENT_PROTOCOL,
  type FrameNode, type JsonObject
} from '../src/index.js'
import { startNetsyncAgent, type Health, type NetsyncAgent } from './helpers.js'

let peer: FrameNode // agent-2 to netsync: votes
let orchestrator: FrameNode // netsync's orchestrator: commits
let dialler: FrameNode // agent-3: a node netsync does not know, which dials netsync
let netsync: NetsyncAgent
let httpPort: number
const proposals: JsonObject[] = []
const decisions: JsonObject[] = []

async function health (): Promise<Health> {
  return await netsync.health()
}

before(async () => {
  peer = await createNode({ privateKey: await privateKeyForSeed('agent-2'), listen: '/ip4/127.0.0.1/tcp/0' })
  await peer.handle(SENTIMENT_PROTOCOL, (req) => {
    proposals.push(req)
    const p = readPropose(req)
    if ('invalid' in p) return { cid: req.cid ?? null, vote: 'disagree', voter: 'agent-2', reason: p.invalid }
    if (p.value === 13) return { cid: p.cid, vote: 'disagree', voter: 'agent-2', reason: 'unlucky' }
    return { cid: p.cid, vote: 'agree', voter: 'agent-2' }
  })
  orchestrator = await createNode({ privateKey: await privateKeyForSeed('orchestrator'), listen: '/ip4/127.0.0.1/tcp/0' })
  await orchestrator.handle(DECISION_PROTOCOL, (req) => {
    const d = readDecision(req)
    if ('invalid' in d) return { cid: req.cid ?? null, status: 'invalid', error: d.invalid }
    decisions.push(req)
    return { cid: d.cid, status: 'committed', seq: decisions.length, duplicate: false }
  })
  dialler = await createNode({ privateKey: await privateKeyForSeed('agent-3'), listen: '/ip4/127.0.0.1/tcp/0' })
  // netsync is ready once it holds connections to its peer and its orchestrator (both ours)
  netsync = await startNetsyncAgent('agent-1', {
    NETSYNC_PEERS: `agent-2=${peer.addresses()[0]?.toString() ?? ''}`,
    NETSYNC_ORCHESTRATOR: orchestrator.addresses()[0]?.toString() ?? '',
    NETSYNC_QUORUM: '2',
    NETSYNC_INTENT_TIMEOUT_MS: '3000',
    NETSYNC_COMMIT_TIMEOUT_MS: '3000'
  }, (h) => h.peers_connected.includes('agent-2') && h.orchestrator_connected)
  httpPort = netsync.httpPort
})

after(async () => {
  await netsync?.stop()
  await Promise.all([peer?.stop(), orchestrator?.stop(), dialler?.stop()])
})

test('netsync agent-1 reports the peer id we derive for its seed', async () => {
  assert.equal((await health()).peer_id, (await peerIdForSeed('agent-1')).toString())
})

test('python to js: netsync proposes to our agent-2 and commits through our orchestrator', async () => {
  const res = await fetch(`http://127.0.0.1:${httpPort}/intents`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"key": "k-☀", "value": 7, "cid": "interop-1"}'
  })
  const body = await res.json() as Record<string, unknown>
  assert.equal(res.status, 200, JSON.stringify(body))
  assert.equal(body.outcome, 'committed')
  assert.equal(body.cid, 'interop-1')
  assert.equal(body.stream_seq, decisions.length)
  assert.deepEqual(proposals.find((p) => p.cid === 'interop-1'),
    { type: 'propose', cid: 'interop-1', key: 'k-☀', value: 7, proposer: 'agent-1' })
  const d = decisions.find((x) => x.cid === 'interop-1')
  assert.ok(d !== undefined)
  assert.deepEqual([d.type, d.key, d.value, d.proposer, d.attempt], ['decision', 'k-☀', 7, 'agent-1', 1])
  for (const t of ['decided_at', 'first_attempt_at', 'first_attempt_age_s']) assert.equal(typeof d[t], 'number', t)
})

test('python to js: our disagreement reaches netsync, which aborts with our reason', async () => {
  const res = await fetch(`http://127.0.0.1:${httpPort}/intents`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"key": "k", "value": 13, "cid": "interop-2"}'
  })
  const body = await res.json() as Record<string, unknown>
  assert.equal(res.status, 409, JSON.stringify(body))
  assert.equal(body.outcome, 'aborted')
  assert.match(String(body.reason), /agent-2: unlucky/)
  assert.equal(decisions.some((x) => x.cid === 'interop-2'), false)
})

test('js to python: a node netsync does not know dials it and gets its votes', async () => {
  const ask = async (cid: string, value: bigint | number): Promise<JsonObject> =>
    await dialler.request(netsync.peer, SENTIMENT_PROTOCOL, { type: 'propose', cid, key: 'k', value, proposer: 'agent-3' }, { timeoutMs: 10_000 })
  assert.deepEqual(await ask('interop-3', 5), { cid: 'interop-3', vote: 'agree', voter: 'agent-1' })
  assert.deepEqual(await ask('interop-3', 6),
    { cid: 'interop-3', vote: 'disagree', voter: 'agent-1', reason: 'agreed to a different proposal under this cid' })
  // a 64-bit value arrives as an integer: out of netsync's range, not "not an integer"
  assert.deepEqual(await ask('interop-4', 9223372036854775807n),
    { cid: 'interop-4', vote: 'disagree', voter: 'agent-1', reason: 'value outside [-1000000, 1000000]' })
  const pong = await dialler.request(netsync.peer, SENTIMENT_PROTOCOL, { type: 'ping', cid: '-' }, { timeoutMs: 10_000 })
  assert.equal(pong.type, 'pong')
})

test('js to python: many requests in flight on one stream, each answered with its own cid', async () => {
  const cids = Array.from({ length: 50 }, (_, i) => `burst-${i}`)
  const answers = await Promise.all(cids.map(async (cid, i) =>
    await dialler.request(netsync.peer, SENTIMENT_PROTOCOL, { type: 'propose', cid, key: 'k', value: i, proposer: 'agent-3' }, { timeoutMs: 10_000 })))
  assert.deepEqual(answers.map((x) => [x.cid, x.vote]), cids.map((cid) => [cid, 'agree']))
})
