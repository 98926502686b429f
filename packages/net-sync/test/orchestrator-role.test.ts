/**
 * `net-sync orchestrator` as a process, against a real nats-server (the project's build) and netsync's
 * own Python agents: decisions committed into the stream with both headers, a duplicate inside the window,
 * a replay past it looked up rather than stored twice, NATS stopped and back, and the scout's summaries.
 */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import {
  commitDecision, createNode, fromJson, monotonicNow, peerIdForSeed, privateKeyForSeed, thisBoot,
  type FrameNode, type Pending, type Peer
} from '../src/index.js'
import { child, freePort, python, startNetsyncAgent, until, type Child, type NetsyncAgent } from './helpers.js'
import { Nats } from './nats-process.js'

const WINDOW_S = 2
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))

let nats: Nats
let orchestrator: Child | undefined
let httpPort: number
let orchestratorPeer: Peer
let agents: NetsyncAgent[] = []
let client: FrameNode
let nc: NatsConnection
let summaries: Subscription
const boot = thisBoot()

function orchestratorLog (): string { return orchestrator?.log.join('') ?? '' }

async function health (): Promise<{ name: string, peer_id: string, nats: boolean }> {
  return await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json() as { name: string, peer_id: string, nats: boolean }
}

async function metric (name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? NaN : Number(line.split(' ')[1])
}

function entry (cid: string, over: Partial<Pending> = {}): Pending {
  const now = Date.now() / 1000
  return {
    cid, key: `k-${cid}`, value: 7, proposer: 'agent-js', decided_at: now, first_attempt_at: now, attempt: 1,
    first_attempt_mono: monotonicNow(), boot, ...over
  }
}

async function lastSeq (): Promise<number> {
  return (await (await jetstreamManager(nc)).streams.info('SENTIMENT')).state.last_seq
}

before(async () => {
  nats = await Nats.launch()
  const p2pPort = await freePort()
  httpPort = await freePort()
  orchestrator = child(process.execPath, [CLI, 'orchestrator'], {
    env: {
      PATH: process.env.PATH,
      NETSYNC_NAME: 'orchestrator',
      NETSYNC_LISTEN: `/ip4/127.0.0.1/tcp/${p2pPort}`,
      NETSYNC_HTTP_PORT: String(httpPort),
      NETSYNC_NATS_URL: nats.url,
      NETSYNC_DUPLICATE_WINDOW_S: String(WINDOW_S),
      NETSYNC_TELEMETRY_INTERVAL_MS: '300'
    }
  }, 'SIGTERM')
  orchestratorPeer = { addr: multiaddr(`/ip4/127.0.0.1/tcp/${p2pPort}/p2p/${(await peerIdForSeed('orchestrator')).toString()}`) }
  await until('the orchestrator\'s /healthz nats: true', async () => (await health()).nats,
    { context: () => `the orchestrator (exit ${String(orchestrator?.proc.exitCode)}):\n${orchestratorLog()}` })
  nc = await connect({ servers: nats.url })
  summaries = nc.subscribe('root.solar.telemetry.peer-health')
  // both kept for `after` even when one fails to start: a running child left behind keeps this file alive
  const started = await Promise.allSettled(['agent-1', 'agent-2'].map(async (name) => await startNetsyncAgent(name, {
    NETSYNC_ORCHESTRATOR: orchestratorPeer.addr.toString(),
    NETSYNC_TELEMETRY_INTERVAL_MS: '100'
  }, (h) => h.orchestrator_connected)))
  agents = started.flatMap((r) => r.status === 'fulfilled' ? [r.value] : [])
  const failed = started.find((r) => r.status === 'rejected')
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
  client = await createNode({ privateKey: await privateKeyForSeed('agent-js'), listen: '/ip4/127.0.0.1/tcp/0' })
})

after(async () => {
  await client?.stop()
  await Promise.all(agents.map(async (a) => { await a.stop() }))
  await nc?.close()
  await orchestrator?.stop()
  await nats?.remove()
})

test('/healthz names the orchestrator and its peer id', async () => {
  const h = await health()
  assert.deepEqual(h, { name: 'orchestrator', peer_id: (await peerIdForSeed('orchestrator')).toString(), nats: true })
})

test("netsync's Python agents commit through it: 200, and the stream holds each message with both headers", async () => {
  const jsm = await jetstreamManager(nc)
  for (const agent of agents) {
    const cid = `py-${agent.name}`
    const res = await fetch(`http://127.0.0.1:${agent.httpPort}/intents`, {
      method: 'POST', body: JSON.stringify({ key: `key-${agent.name}`, value: 42, cid })
    })
    const body = await res.json() as { outcome: string, stream_seq: number }
    assert.equal(res.status, 200, JSON.stringify(body) + orchestratorLog())
    assert.equal(body.outcome, 'committed')
    const m = await jsm.streams.getMessage('SENTIMENT', { seq: body.stream_seq })
    assert.ok(m !== null)
    assert.equal(m.subject, 'root.solar.command.sentiment.set')
    assert.equal(m.header?.get('Nats-Msg-Id'), cid)
    assert.equal(m.header?.get('Correlation-Id'), cid)
    const stored = fromJson(m.string()) as Record<string, unknown>
    assert.deepEqual(Object.keys(stored), ['cid', 'key', 'value', 'proposer', 'decided_at'])
    assert.deepEqual([stored.cid, stored.key, stored.value, stored.proposer], [cid, `key-${agent.name}`, 42, agent.name])
  }
  const info = await jsm.streams.info('SENTIMENT')
  assert.equal(info.config.duplicate_window, WINDOW_S * 1e9, 'made with NETSYNC_DUPLICATE_WINDOW_S')
})

test('a duplicate cid within the window is answered duplicate with the first seq; nothing is stored twice', async () => {
  const e = entry('dup-in-window')
  const first = await commitDecision(client, orchestratorPeer, e, { timeoutMs: 5000, boot })
  const again = await commitDecision(client, orchestratorPeer, { ...e, attempt: 2 }, { timeoutMs: 5000, boot })
  assert.ok(first.committed && again.committed, JSON.stringify([first, again]))
  assert.equal(first.duplicate, false)
  assert.equal(again.duplicate, true)
  assert.equal(again.seq, first.seq)
  assert.equal(await lastSeq(), first.seq)
})

test('a replay past the window whose first publish landed is looked up: duplicate, and stored once', async () => {
  const e = entry('dup-past-window')
  const first = await commitDecision(client, orchestratorPeer, e, { timeoutMs: 5000, boot })
  assert.ok(first.committed)
  const lookups = await metric('netsync_window_lookups_total')
  await sleep(WINDOW_S * 1000 + 500) // the window itself must pass: JetStream forgets the Nats-Msg-Id
  const replay = await commitDecision(client, orchestratorPeer, { ...e, attempt: 3 }, { timeoutMs: 8000, boot })
  assert.ok(replay.committed, JSON.stringify(replay))
  assert.deepEqual([replay.seq, replay.duplicate], [first.seq, true])
  assert.equal(await lastSeq(), first.seq, 'nothing published')
  assert.equal(await metric('netsync_window_lookups_total'), lookups + 1)

  // the control: a replay past the window that never landed is not in the stream, so it is published
  const lost = await commitDecision(client, orchestratorPeer,
    entry('lost-first-publish', { attempt: 2, first_attempt_mono: monotonicNow() - 3 * WINDOW_S }), { timeoutMs: 8000, boot })
  assert.ok(lost.committed, JSON.stringify(lost))
  assert.deepEqual([lost.seq, lost.duplicate], [first.seq + 1, false])
  assert.equal(await metric('netsync_window_lookups_total'), lookups + 2)
})

test('the scout publishes a summary that names each agent, the Python agents included', async () => {
  const seen = new Set<string>()
  const timer = setTimeout(() => { summaries.unsubscribe() }, 15_000) // ends the loop when none come
  for await (const m of summaries) {
    const s = fromJson(m.string()) as { window_start: number, window_end: number, messages: number, agents: Record<string, Record<string, unknown>> }
    assert.deepEqual(Object.keys(s), ['window_start', 'window_end', 'messages', 'agents'])
    assert.ok(s.window_end > s.window_start && s.messages > 0)
    for (const [name, a] of Object.entries(s.agents)) {
      seen.add(name)
      assert.deepEqual(Object.keys(a), ['samples', 'peers_reachable_min', 'buffer_depth_max', 'nats_reachable_last'])
    }
    if (seen.has('agent-1') && seen.has('agent-2')) break
  }
  clearTimeout(timer)
  assert.deepEqual([...seen].sort(), ['agent-1', 'agent-2'])
})

test('the stream deleted: the next publish finds it gone (nats-unavailable, nats false) and the one after makes it again', async () => {
  await (await jetstreamManager(nc)).streams.delete('SENTIMENT')
  const gone = await commitDecision(client, orchestratorPeer, entry('stream-gone'), { timeoutMs: 5000, boot })
  assert.equal(!gone.committed && gone.status, 'nats-unavailable', JSON.stringify(gone))
  assert.equal((await health()).nats, false)
  const again = await commitDecision(client, orchestratorPeer, entry('stream-made-again'), { timeoutMs: 5000, boot })
  assert.ok(again.committed, JSON.stringify(again))
  assert.equal(again.seq, 1)
  assert.equal((await health()).nats, true)
  const info = await (await jetstreamManager(nc)).streams.info('SENTIMENT')
  assert.equal(info.config.duplicate_window, WINDOW_S * 1e9)
})

test('NATS stopped: nats-unavailable and /healthz nats false; back with NATS, without any intent', async () => {
  await nc.close()
  await nats.stop()
  await until('/healthz nats: false', async () => !(await health()).nats)
  const r = await commitDecision(client, orchestratorPeer, entry('while-down'), { timeoutMs: 5000, boot })
  assert.equal(!r.committed && r.status, 'nats-unavailable', JSON.stringify(r))
  await nats.start()
  await until('/healthz nats: true again', async () => (await health()).nats)
  const back = await commitDecision(client, orchestratorPeer, entry('after-restart'), { timeoutMs: 5000, boot })
  assert.ok(back.committed, JSON.stringify(back))
})

/** The samples of a Prometheus text, `name` or `name{labels}` without `le` (and without prometheus_client's `_created`). */
function samples (text: string): Set<string> {
  return new Set(text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(' ')[0]!)
    .filter((n) => !n.includes('_created') && !n.includes('le=')))
}

test("/metrics serves every netsync_ sample netsync's orchestrator serves after the same answers", async () => {
  const theirs = python(`
import json, os, sys
os.environ["NETSYNC_NATS_URL"] = json.loads(sys.argv[1])
from netsync.orchestrator import Orchestrator
from netsync.settings import OrchestratorSettings
from prometheus_client import generate_latest
o = Orchestrator(OrchestratorSettings.from_env())
o.m_decisions.labels("committed").inc()
o.m_decisions.labels("nats-unavailable").inc()
o.m_publish.observe(0.1)
o.m_lookups.inc()
print(generate_latest(o.registry).decode())
`, nats.url)
  const ours = samples(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text())
  const wanted = [...samples(theirs)].filter((n) => n.startsWith('netsync_') || n === 'process_resident_memory_bytes' || n === 'process_open_fds')
  assert.ok(wanted.includes('netsync_decisions_total{status="nats-unavailable"}') && wanted.includes('netsync_window_lookups_total'), wanted.join(', '))
  assert.deepEqual(wanted.filter((n) => !ours.has(n)), [])
})
