import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { AgentMetrics, Log, peerIdForSeed } from '../src/index.js'
import { python, startNetsyncAgent, type NetsyncAgent } from './helpers.js'

test('a log line is one JSON object: t, level, node, msg, then cid when there is one, then the fields', () => {
  const lines: string[] = []
  const log = new Log('agent-1', (l) => lines.push(l))
  const before = Date.now() / 1000
  log.info('committed', { cid: 'c1', stream_seq: 5, value: 9223372036854775807n })
  log.warning('orchestrator unreachable', { error: 'refused' })
  log.error('handler failed')
  assert.ok(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n')))
  const recs = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  assert.deepEqual(Object.keys(recs[0]!), ['t', 'level', 'node', 'msg', 'cid', 'stream_seq', 'value'])
  assert.match(lines[0]!, /"value":9223372036854775807\}/)
  assert.deepEqual(recs.map((r) => [r.level, r.node, r.msg, r.cid]), [
    ['info', 'agent-1', 'committed', 'c1'], ['warning', 'agent-1', 'orchestrator unreachable', undefined], ['error', 'agent-1', 'handler failed', undefined]
  ])
  assert.ok(typeof recs[0]!.t === 'number' && recs[0]!.t >= before - 0.001 && recs[0]!.t <= Date.now() / 1000 + 0.001)
  // netsync's Log writes the same keys, in the same order, for the same call
  const theirs = python(`
import io, json
from netsync.logs import Log
out = io.StringIO()
Log("agent-1", out).info("committed", cid="c1", stream_seq=5, value=9223372036854775807)
print(json.dumps(list(json.loads(out.getvalue()).keys())))
`)
  assert.deepEqual(JSON.parse(theirs), Object.keys(recs[0]!))
})

/** The sample names of a Prometheus text (`name{labels} value`), without prometheus_client's `_created`. */
function samples (text: string): Set<string> {
  return new Set(text.split('\n').filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.replace(/[{ ].*$/, '')).filter((n) => !n.endsWith('_created')))
}

let netsync: NetsyncAgent

before(async () => {
  netsync = await startNetsyncAgent('agent-1', { NETSYNC_ORCHESTRATOR: `/ip4/127.0.0.1/tcp/9/p2p/${(await peerIdForSeed('orchestrator')).toString()}` })
})

after(async () => {
  await netsync?.stop()
})

test("the agent's metrics have every sample netsync's agent serves, with the contract's names", async () => {
  const theirs = samples(await (await fetch(`http://127.0.0.1:${netsync.httpPort}/metrics`)).text())
  const m = new AgentMetrics(256)
  m.intents.inc({ outcome: 'committed' })
  const { contentType, body } = await m.text()
  assert.match(contentType, /^text\/plain; version=0\.0\.4/)
  const ours = samples(body)
  const netsyncOwn = [...theirs].filter((n) => n.startsWith('netsync_'))
  assert.ok(theirs.has('netsync_buffer_depth') && theirs.has('netsync_quorum_seconds_bucket'), `netsync serves ${netsyncOwn.join(', ')}`)
  assert.deepEqual(netsyncOwn.filter((n) => !ours.has(n)), [])
  for (const n of ['netsync_buffer_depth', 'netsync_buffer_cap', 'netsync_pending_commit', 'netsync_replays_total', 'netsync_replay_failures_total',
    'netsync_intents_total', 'netsync_quorum_seconds_bucket', 'netsync_commit_seconds_sum', 'netsync_peers_reachable', 'netsync_nats_reachable',
    'process_resident_memory_bytes', 'process_open_fds']) {
    assert.ok(ours.has(n), n)
  }
  assert.match(body, /^netsync_buffer_cap 256$/m)
  assert.match(body, /^netsync_intents_total\{outcome="committed"\} 1$/m)
})
