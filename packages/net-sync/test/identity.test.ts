import { test } from 'node:test'
import assert from 'node:assert/strict'
import { peerIdForSeed, privateKeyForSeed } from '../src/index.js'
import { python } from './helpers.js'

/** netsync's own peer ids for these seeds, computed by netsync.p2p.peer_id_for_seed. */
function netsyncPeerIds (seeds: string[]): string[] {
  const out = python('import json, sys\nfrom netsync.p2p import peer_id_for_seed\n' +
    'print(json.dumps([peer_id_for_seed(s) for s in json.loads(sys.argv[1])]))', seeds)
  return JSON.parse(out) as string[]
}

test('peer ids from NETSYNC_IDENTITY_SEED are the ones netsync derives', async () => {
  const seeds = ['agent-1', 'agent-2', 'agent-3', 'orchestrator', 'ünïcødé seed ☀', '']
  const ours = await Promise.all(seeds.map(async (s) => (await peerIdForSeed(s)).toString()))
  assert.deepEqual(ours, netsyncPeerIds(seeds))
  for (const id of ours) assert.match(id, /^12D3KooW[1-9A-HJ-NP-Za-km-z]+$/)
  assert.equal(new Set(ours).size, seeds.length)
})

test('the same seed gives the same key every time; the key is Ed25519', async () => {
  const a = await privateKeyForSeed('agent-1')
  const b = await privateKeyForSeed('agent-1')
  assert.equal(a.type, 'Ed25519')
  assert.ok(a.equals(b))
  assert.ok(!a.equals(await privateKeyForSeed('agent-2')))
})
