/**
 * Telemetry from netsync's agent (py-libp2p floodsub) to js nodes: stock js-libp2p floodsub rejects every
 * message (js-libp2p PR #3626); telemetryPubsub() takes them, and still refuses a forged one.
 */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { floodsub, type Message, type SignedMessage } from '@libp2p/floodsub'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  createNode, privateKeyForSeed, seqnoBytes, telemetryPubsub, TELEMETRY_TOPIC, type FrameNode
} from '../src/index.js'
import { startNetsyncAgent, type NetsyncAgent } from './helpers.js'

let fixed: FrameNode // agent-2: telemetryPubsub()
let stock: FrameNode // agent-3: js-libp2p's floodsub as it ships
let netsync: NetsyncAgent
const heard: Record<string, Array<Record<string, unknown>>> = { fixed: [], stock: [] }

function listen (node: FrameNode, into: Array<Record<string, unknown>>): void {
  node.pubsub!.addEventListener('message', (evt) => {
    if (evt.detail.topic === TELEMETRY_TOPIC) into.push(JSON.parse(new TextDecoder().decode(evt.detail.data)) as Record<string, unknown>)
  })
  node.pubsub!.subscribe(TELEMETRY_TOPIC)
}

before(async () => {
  fixed = await createNode({ privateKey: await privateKeyForSeed('agent-2'), listen: '/ip4/127.0.0.1/tcp/0', pubsub: telemetryPubsub() })
  stock = await createNode({ privateKey: await privateKeyForSeed('agent-3'), listen: '/ip4/127.0.0.1/tcp/0', pubsub: floodsub() })
  listen(fixed, heard.fixed!)
  listen(stock, heard.stock!)
  netsync = await startNetsyncAgent('agent-1', {
    NETSYNC_PEERS: `agent-2=${fixed.addresses()[0]!.toString()},agent-3=${stock.addresses()[0]!.toString()}`,
    NETSYNC_ORCHESTRATOR: `/ip4/127.0.0.1/tcp/9/p2p/${peerIdFromPrivateKey(await privateKeyForSeed('orchestrator')).toString()}`, // nobody
    NETSYNC_TELEMETRY_INTERVAL_MS: '100'
  }, (h) => h.peers_connected.length === 2)
})

after(async () => {
  await netsync?.stop()
  await Promise.all([fixed?.stop(), stock?.stop()])
})

test("netsync's telemetry reaches telemetryPubsub, and none of it passes stock floodsub (PR #3626)", async () => {
  const deadline = Date.now() + 20_000
  while (heard.fixed!.length < 10 && Date.now() < deadline) await sleep(100)
  assert.ok(heard.fixed!.length >= 10, `heard ${heard.fixed!.length} samples`)
  const sample = heard.fixed![0]!
  assert.deepEqual(Object.keys(sample).sort(), ['agent', 'buffer_depth', 'nats_reachable', 'peers_reachable', 't'])
  assert.equal(sample.agent, 'agent-1')
  assert.equal(heard.stock!.length, 0, 'stock floodsub rejected every signed message from py-libp2p')
})

test('js to js: stock floodsub hears a js node, so its silence above is the signature check', async () => {
  await fixed.libp2p.dial(stock.addresses()[0]!)
  const before = heard.stock!.length
  const deadline = Date.now() + 10_000
  while (heard.stock!.length === before && Date.now() < deadline) {
    await fixed.pubsub!.publish(TELEMETRY_TOPIC, new TextEncoder().encode('{"agent":"agent-2"}'))
    await sleep(100)
  }
  assert.ok(heard.stock!.some((s) => s.agent === 'agent-2'))
})

interface Internals {
  validate: (from: PeerId, message: Message) => Promise<void>
  encodeMessage: (rpc: object) => Uint8Array
}

test('a message signed over the 8-byte seqno is taken; one whose data or seqno was changed is refused', async () => {
  const key = await privateKeyForSeed('py-agent')
  const from = peerIdFromPrivateKey(key)
  const seqno = 7n // 00 00 00 00 00 00 00 07 on the wire, as py-libp2p counts
  const internals = fixed.pubsub as unknown as Internals
  const body = internals.encodeMessage({ from: from.toMultihash().bytes, data: new TextEncoder().encode('{"agent":"x"}'), sequenceNumber: seqnoBytes(seqno), topic: TELEMETRY_TOPIC })
  const signature = await key.sign(new Uint8Array([...new TextEncoder().encode('libp2p-pubsub:'), ...body]))
  const message: SignedMessage = { type: 'signed', from, topic: TELEMETRY_TOPIC, data: new TextEncoder().encode('{"agent":"x"}'), sequenceNumber: seqno, signature, key: key.publicKey }
  await internals.validate(from, message)
  await assert.rejects((stock.pubsub as unknown as Internals).validate(from, message), /StrictSigning: Invalid message signature/)
  await assert.rejects(internals.validate(from, { ...message, data: new TextEncoder().encode('{"agent":"y"}') }), /Invalid message signature/)
  await assert.rejects(internals.validate(from, { ...message, sequenceNumber: 8n }), /Invalid message signature/)
  assert.deepEqual([...seqnoBytes(7n)], [0, 0, 0, 0, 0, 0, 0, 7])
})
