/**
 * The replay loop against netsync's own orchestrator and a real nats-server: entries drain head first,
 * in decision order; failures back off 200, 400, 800, 1600, 2000 ms; a success resets the wait.
 */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { multiaddr } from '@multiformats/multiaddr'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import {
  commitDecision, createNode, fromJson, JOURNAL_NAME, monotonicNow, peerIdForSeed, PendingCommitBuffer, privateKeyForSeed,
  ReplayLoop, thisBoot, type FrameNode, type JsonObject, type Pending, type Peer
} from '../src/index.js'
import { startNatsServer, startNetsync, type NatsServer, type NetsyncAgent } from './helpers.js'

let nats: NatsServer
let orchestrator: NetsyncAgent
let agent: FrameNode
const boot = thisBoot()

function entry (cid: string): Pending {
  const now = Date.now() / 1000
  return { cid, key: 'k', value: 1, proposer: 'agent-1', decided_at: now, first_attempt_at: now, attempt: 1, first_attempt_mono: monotonicNow(), boot }
}

async function until (what: string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`)
    await sleep(20)
  }
}

before(async () => {
  nats = await startNatsServer()
  orchestrator = await startNetsync<{ nats: boolean }>('orchestrator', 'orchestrator', { NETSYNC_NATS_URL: nats.url }, (h) => h.nats)
  agent = await createNode({ privateKey: await privateKeyForSeed('agent-1'), listen: '/ip4/127.0.0.1/tcp/0' })
})

after(async () => {
  await agent?.stop()
  await orchestrator?.stop()
  await nats?.stop()
})

test('the buffer drains head first: commits keep decision order, each attempt journaled before it is sent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'net-sync-replay-'))
  const buffer = await PendingCommitBuffer.open(dir, 16)
  const cids = ['r1', 'r2', 'r3', 'r4', 'r5']
  await buffer.appendMany(cids.map(entry))
  const committed: Array<[string, number, number]> = []
  const loop = new ReplayLoop(buffer, {
    intervalMs: 200,
    commit: async (e) => await commitDecision(agent, orchestrator.peer, e, { timeoutMs: 5000, boot }),
    onCommitted: (e, seq) => committed.push([e.cid, seq, e.attempt])
  })
  const stop = new AbortController()
  const running = loop.run(stop.signal)
  await until('all five committed', () => committed.length === 5, 10_000)
  assert.deepEqual(committed.map(([cid]) => cid), cids)
  assert.deepEqual(committed.map(([, , attempt]) => attempt), [2, 2, 2, 2, 2])
  const seqs = committed.map(([, seq]) => seq)
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b))
  assert.equal(buffer.length, 0)
  assert.equal(statSync(join(dir, JOURNAL_NAME)).size, 0)
  // the stream holds them in the same order
  const nc = await connect({ servers: nats.url })
  const jsm = await jetstreamManager(nc)
  const inStream: string[] = []
  for (const seq of seqs) inStream.push(String((fromJson((await jsm.streams.getMessage('SENTIMENT', { seq }))!.string()) as JsonObject).cid))
  await nc.close()
  assert.deepEqual(inStream, cids)
  stop.abort()
  await running
  await buffer.close()
})

test('failures back off from the interval, doubling to 2 s; a success resets it, and a new entry goes at once', async () => {
  const buffer = await PendingCommitBuffer.open(mkdtempSync(join(tmpdir(), 'net-sync-replay-')), 16)
  // another peer id: an address with the orchestrator's would reuse the open connection to it
  const nobody: Peer = { addr: multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${(await peerIdForSeed('orchestrator-gone')).toString()}`) }
  let target = nobody
  const failures: number[] = []
  const committed: Array<[string, number]> = []
  const loop = new ReplayLoop(buffer, {
    intervalMs: 200,
    commit: async (e) => await commitDecision(agent, target, e, { timeoutMs: 5000, boot }),
    onCommitted: (e) => committed.push([e.cid, Date.now()]),
    onFailure: () => failures.push(Date.now())
  })
  const stop = new AbortController()
  const running = loop.run(stop.signal)
  await buffer.append(entry('b1'))
  loop.wake()
  await until('six failed attempts', () => failures.length >= 6, 10_000)
  const gaps = failures.slice(1).map((t, i) => t - failures[i]!)
  const nominal = [200, 400, 800, 1600, 2000]
  for (const [i, gap] of gaps.slice(0, 5).entries()) {
    assert.ok(gap >= nominal[i]! - 20 && gap < nominal[i]! + 400, `gap ${i}: ${gap} ms, expected about ${nominal[i]} (all: ${gaps.join(', ')})`)
  }
  assert.equal(buffer.head()?.attempt, 1 + failures.length, 'every attempt journaled')
  target = orchestrator.peer // the orchestrator is back
  await until('b1 committed', () => committed.length === 1, 3000)
  await buffer.append(entry('b2'))
  const appended = Date.now()
  loop.wake()
  await until('b2 committed', () => committed.length === 2, 3000)
  assert.ok(committed[1]![1] - appended < 500, `b2 went at once: ${committed[1]![1] - appended} ms`)
  stop.abort()
  await running
  await buffer.close()
})
