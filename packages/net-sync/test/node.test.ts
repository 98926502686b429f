import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { multiaddr } from '@multiformats/multiaddr'
import {
  createNode, encodeFrame, peerIdForSeed, privateKeyForSeed, readFrames, PeerTimeoutError, PeerUnavailableError, SENTIMENT_PROTOCOL,
  DECISION_PROTOCOL, type FrameNode, type JsonObject, type Peer
} from '../src/index.js'

let a: FrameNode
let b: FrameNode
let bPeer: Peer

before(async () => {
  a = await createNode({ privateKey: await privateKeyForSeed('node-test-a'), listen: '/ip4/127.0.0.1/tcp/0' })
  b = await createNode({ privateKey: await privateKeyForSeed('node-test-b'), listen: '/ip4/127.0.0.1/tcp/0' })
  await b.handle(SENTIMENT_PROTOCOL, async (req) => {
    if (req.key === 'boom') throw new TypeError('no such key')
    if (typeof req.delay === 'number') await sleep(req.delay)
    return { cid: req.cid ?? null, vote: 'agree', voter: 'b', echo: req.value ?? null }
  })
  const addr = b.addresses()[0]
  assert.ok(addr !== undefined)
  bPeer = { addr }
})

after(async () => {
  await a.stop()
  await b.stop()
})

test('a node listens with its seed-derived peer id and answers a request frame', async () => {
  assert.equal(b.addresses()[0]?.toString().endsWith(`/p2p/${b.peerId}`), true)
  const answer = await a.request(bPeer, SENTIMENT_PROTOCOL, { type: 'propose', cid: 'c1', key: 'k', value: 9223372036854775807n }, { timeoutMs: 5000 })
  assert.deepEqual(answer, { cid: 'c1', vote: 'agree', voter: 'b', echo: 9223372036854775807n })
  assert.equal(a.isConnected(bPeer), true)
})

test('requests on one stream are answered each as soon as ready, matched by rid', async () => {
  const order: string[] = []
  const calls = [300, 10, 150].map(async (delay, i) => {
    const ans = await a.request(bPeer, SENTIMENT_PROTOCOL, { type: 'propose', cid: `m${i}`, key: 'k', value: i, delay }, { timeoutMs: 5000 })
    order.push(String(ans.cid))
    return ans
  })
  const answers = await Promise.all(calls)
  assert.deepEqual(answers.map((x) => [x.cid, x.echo]), [['m0', 0], ['m1', 1], ['m2', 2]])
  assert.deepEqual(order, ['m1', 'm2', 'm0'])
})

test('ping is answered pong; a failing handler answers {cid, error} and the stream goes on', async () => {
  assert.deepEqual(await a.request(bPeer, SENTIMENT_PROTOCOL, { type: 'ping', cid: '-' }, { timeoutMs: 5000 }), { type: 'pong' })
  const failed = await a.request(bPeer, SENTIMENT_PROTOCOL, { type: 'propose', cid: 'c2', key: 'boom', value: 1 }, { timeoutMs: 5000 })
  assert.deepEqual(failed, { cid: 'c2', error: 'TypeError: no such key' })
  const next = await a.request(bPeer, SENTIMENT_PROTOCOL, { type: 'propose', cid: 'c3', key: 'k', value: 3 }, { timeoutMs: 5000 })
  assert.equal(next.cid, 'c3')
})

test('a caller may open a stream per request: one frame, close its side, read one answer', async () => {
  const stream = await a.libp2p.dialProtocol(bPeer.addr, SENTIMENT_PROTOCOL)
  stream.send(encodeFrame({ type: 'propose', cid: 'one-shot', key: 'k', value: 5 }))
  await stream.close()
  const answers: JsonObject[] = []
  for await (const frame of readFrames(stream)) answers.push(frame)
  assert.deepEqual(answers, [{ cid: 'one-shot', vote: 'agree', voter: 'b', echo: 5 }])
})

test('a late answer is a PeerTimeoutError and keeps the connection; the next call is answered', async () => {
  await assert.rejects(
    a.request(bPeer, SENTIMENT_PROTOCOL, { type: 'propose', cid: 'slow', key: 'k', value: 1, delay: 500 }, { timeoutMs: 100 }),
    (e: unknown) => e instanceof PeerTimeoutError && e.name === 'PeerTimeoutError' && /within 100 ms/.test(e.message))
  assert.equal(a.isConnected(bPeer), true)
  const ans = await a.request(bPeer, SENTIMENT_PROTOCOL, { type: 'propose', cid: 'after', key: 'k', value: 1 }, { timeoutMs: 5000 })
  assert.equal(ans.cid, 'after')
})

test('a protocol the peer does not serve, or a peer nobody listens for, is a PeerUnavailableError', async () => {
  await assert.rejects(a.request(bPeer, DECISION_PROTOCOL, { type: 'ping' }, { timeoutMs: 5000 }),
    (e: unknown) => e instanceof PeerUnavailableError && !(e instanceof PeerTimeoutError))
  // (an address of a peer already connected would reuse that connection: libp2p dials by peer id first)
  const nobody = { addr: multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${(await peerIdForSeed('nobody')).toString()}`) }
  await assert.rejects(a.request(nobody, SENTIMENT_PROTOCOL, { type: 'ping' }, { timeoutMs: 5000 }),
    (e: unknown) => e instanceof PeerUnavailableError && e.name === 'PeerUnavailableError')
})

test('after the connection is closed, the next call dials again', async () => {
  await a.request(bPeer, SENTIMENT_PROTOCOL, { type: 'ping' }, { timeoutMs: 5000 })
  await b.hangUp({ addr: a.addresses()[0]! })
  // the first call may find the broken stream (unavailable); a call after it dials afresh
  let answer: JsonObject | undefined
  for (let i = 0; i < 3 && answer === undefined; i++) {
    try {
      answer = await a.request(bPeer, SENTIMENT_PROTOCOL, { type: 'propose', cid: 're', key: 'k', value: 1 }, { timeoutMs: 5000 })
    } catch (e) {
      assert.ok(e instanceof PeerUnavailableError, String(e))
    }
  }
  assert.equal(answer?.cid, 're')
})
