/**
 * Interop with netsync's own agent (py-libp2p 0.8.1), started as `python -m netsync agent` from the
 * checkout's venv: it dials our nodes as its peer agent-2 and its orchestrator, and our node dials it.
 */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { multiaddr } from '@multiformats/multiaddr'
import {
  createNode, peerIdForSeed, privateKeyForSeed, readDecision, readPropose, DECISION_PROTOCOL, SENTIMENT_PROTOCOL,
  type FrameNode, type JsonObject, type Peer
} from '../src/index.js'
import { PYTHON, ROOT } from './helpers.js'

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

let peer: FrameNode // agent-2 to netsync: votes
let orchestrator: FrameNode // netsync's orchestrator: commits
let dialler: FrameNode // agent-3: a node netsync does not know, which dials netsync
let netsync: ChildProcess
let netsyncPeer: Peer
let httpPort: number
let journal: string
const proposals: JsonObject[] = []
const decisions: JsonObject[] = []
const netsyncLog: string[] = []

async function health (): Promise<{ peers_connected: string[], orchestrator_connected: boolean, peer_id: string }> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`)
  return await res.json() as { peers_connected: string[], orchestrator_connected: boolean, peer_id: string }
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

  const p2pPort = await freePort()
  httpPort = await freePort()
  journal = mkdtempSync(join(tmpdir(), 'net-sync-interop-'))
  netsync = spawn(PYTHON, ['-m', 'netsync', 'agent'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      NETSYNC_NAME: 'agent-1',
      NETSYNC_LISTEN: `/ip4/127.0.0.1/tcp/${p2pPort}`,
      NETSYNC_HTTP_PORT: String(httpPort),
      NETSYNC_PEERS: `agent-2=${peer.addresses()[0]?.toString() ?? ''}`,
      NETSYNC_ORCHESTRATOR: orchestrator.addresses()[0]?.toString() ?? '',
      NETSYNC_JOURNAL_DIR: journal,
      NETSYNC_QUORUM: '2',
      NETSYNC_INTENT_TIMEOUT_MS: '3000',
      NETSYNC_COMMIT_TIMEOUT_MS: '3000'
    }
  })
  netsync.stdout?.on('data', (d: Buffer) => netsyncLog.push(d.toString()))
  netsync.stderr?.on('data', (d: Buffer) => netsyncLog.push(d.toString()))
  netsyncPeer = { addr: multiaddr(`/ip4/127.0.0.1/tcp/${p2pPort}/p2p/${(await peerIdForSeed('agent-1')).toString()}`) }

  // netsync is ready once it holds connections to its peer and its orchestrator (both ours)
  const deadline = Date.now() + 60_000
  for (;;) {
    try {
      const h = await health()
      if (h.peers_connected.includes('agent-2') && h.orchestrator_connected) break
    } catch {}
    if (netsync.exitCode !== null || Date.now() > deadline) {
      throw new Error(`netsync agent not ready (exit ${netsync.exitCode}):\n${netsyncLog.join('')}`)
    }
    await sleep(200)
  }
})

after(async () => {
  netsync?.kill('SIGTERM')
  await Promise.all([peer?.stop(), orchestrator?.stop(), dialler?.stop()])
  rmSync(journal, { recursive: true, force: true })
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
    await dialler.request(netsyncPeer, SENTIMENT_PROTOCOL, { type: 'propose', cid, key: 'k', value, proposer: 'agent-3' }, { timeoutMs: 10_000 })
  assert.deepEqual(await ask('interop-3', 5), { cid: 'interop-3', vote: 'agree', voter: 'agent-1' })
  assert.deepEqual(await ask('interop-3', 6),
    { cid: 'interop-3', vote: 'disagree', voter: 'agent-1', reason: 'agreed to a different proposal under this cid' })
  // a 64-bit value arrives as an integer: out of netsync's range, not "not an integer"
  assert.deepEqual(await ask('interop-4', 9223372036854775807n),
    { cid: 'interop-4', vote: 'disagree', voter: 'agent-1', reason: 'value outside [-1000000, 1000000]' })
  const pong = await dialler.request(netsyncPeer, SENTIMENT_PROTOCOL, { type: 'ping', cid: '-' }, { timeoutMs: 10_000 })
  assert.equal(pong.type, 'pong')
})

test('js to python: many requests in flight on one stream, each answered with its own cid', async () => {
  const cids = Array.from({ length: 50 }, (_, i) => `burst-${i}`)
  const answers = await Promise.all(cids.map(async (cid, i) =>
    await dialler.request(netsyncPeer, SENTIMENT_PROTOCOL, { type: 'propose', cid, key: 'k', value: i, proposer: 'agent-3' }, { timeoutMs: 10_000 })))
  assert.deepEqual(answers.map((x) => [x.cid, x.vote]), cids.map((cid) => [cid, 'agree']))
})
