/**
 * `net-sync agent` as the image runs it (`node dist/src/cli.js agent`), in a cluster of netsync's own: two
 * netsync agents as its peers, netsync's orchestrator and a nats-server. What a user of the agent checks:
 * its answers (200 with the stream's seq, 202 then committed, 409, 429, repeats), /healthz, the stream's
 * messages, the scout's summaries naming it, its answers kept across a kill, and the command's exits.
 */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { multiaddr } from '@multiformats/multiaddr'
import {
  ANSWERS_CURRENT, createNode, fromJson, peerIdForSeed, privateKeyForSeed, SENTIMENT_PROTOCOL, SUMMARY_SUBJECT, type JsonObject
} from '../src/index.js'
import { child, freePort, startNatsServer, startNetsync, until, untilReady, type Child, type NatsServer, type NetsyncAgent } from './helpers.js'

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))

/** A TCP link to `target` that can be cut (listener closed, live connections reset) and healed, as a proxy's. */
class Link {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()

  private constructor (readonly port: number, private readonly target: number) {}

  static async open (target: number): Promise<Link> {
    const link = new Link(await freePort(), target)
    await link.heal()
    return link
  }

  async heal (): Promise<void> {
    const server = createServer((inbound) => {
      const outbound = tcpConnect(this.target, '127.0.0.1')
      for (const [a, b] of [[inbound, outbound], [outbound, inbound]] as const) {
        this.sockets.add(a)
        a.pipe(b)
        a.on('error', () => b.destroy())
        a.on('close', () => { this.sockets.delete(a); b.destroy() })
      }
    })
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve))
    this.server = server
  }

  async cut (): Promise<void> {
    const server = this.server
    this.server = undefined
    for (const s of this.sockets) s.resetAndDestroy()
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

interface Health { name: string, peer_id: string, buffer_depth: number, buffer_cap: number, peers_connected: string[], orchestrator_connected: boolean }

let nats: NatsServer
let nc: NatsConnection
let orchestrator: NetsyncAgent
let peers: NetsyncAgent[] = []
let link: Link
let agent: Child | undefined
const journal = mkdtempSync(join(tmpdir(), 'net-sync-agent-role-'))
const env: Record<string, string> = {}
let http = ''
let agent1 = '' // its libp2p address

async function startAgent (ready: (h: Health) => boolean = (h) => h.orchestrator_connected && h.peers_connected.length === 2): Promise<Child> {
  const c = child(process.execPath, [CLI, 'agent'], { env: { PATH: process.env.PATH, ...env } }, 'SIGTERM')
  await untilReady('net-sync agent', c, async () => ready(await (await fetch(`${http}/healthz`)).json() as Health), 30_000, 100)
  return c
}

async function post (body: object | string, to = http): Promise<{ status: number, body: JsonObject }> {
  const res = await fetch(`${to}/intents`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) })
  return { status: res.status, body: fromJson(await res.text()) as JsonObject }
}

async function get (path: string): Promise<{ status: number, body: JsonObject }> {
  const res = await fetch(`${http}${path}`)
  return { status: res.status, body: fromJson(await res.text()) as JsonObject }
}


/** The stream's message at `seq`: its body and its Nats-Msg-Id. */
async function inStream (seq: number): Promise<{ body: JsonObject, msgId: string | undefined }> {
  const msg = await (await jetstreamManager(nc)).streams.getMessage('SENTIMENT', { seq })
  assert.ok(msg !== null, `no message ${seq} in the stream`)
  return { body: fromJson(msg.string()) as JsonObject, msgId: msg.header.get('Nats-Msg-Id') }
}

before(async () => {
  const [p1, p2, p3, po, httpPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()])
  const id = async (seed: string): Promise<string> => (await peerIdForSeed(seed)).toString()
  const addr = async (seed: string, port: number): Promise<string> => `/ip4/127.0.0.1/tcp/${port}/p2p/${await id(seed)}`
  const [a1, a2, a3, ao] = await Promise.all([addr('agent-1', p1), addr('agent-2', p2), addr('agent-3', p3), addr('orchestrator', po)])
  agent1 = a1
  nats = await startNatsServer()
  nc = await connect({ servers: nats.url })
  link = await Link.open(po)
  // 1 s to gather a quorum, not 80 ms: this 2-core machine runs other suites beside this one
  const common = { NETSYNC_TELEMETRY_INTERVAL_MS: '200', NETSYNC_INTENT_TIMEOUT_MS: '1000' }
  const python = (name: string, port: number, others: string, extra: Record<string, string> = {}): Promise<NetsyncAgent> =>
    startNetsync('agent', name, { NETSYNC_LISTEN: `/ip4/127.0.0.1/tcp/${port}`, NETSYNC_PEERS: others, NETSYNC_ORCHESTRATOR: ao, ...common, ...extra })
  Object.assign(env, {
    NETSYNC_NAME: 'agent-1',
    NETSYNC_LISTEN: `/ip4/127.0.0.1/tcp/${p1}`,
    NETSYNC_HTTP_PORT: String(httpPort),
    NETSYNC_JOURNAL_DIR: journal,
    NETSYNC_PEERS: `agent-2=${a2},agent-3=${a3}`,
    NETSYNC_ORCHESTRATOR: `/ip4/127.0.0.1/tcp/${link.port}/p2p/${await id('orchestrator')}`, // through the link
    NETSYNC_BUFFER_CAP: '2',
    NETSYNC_VALUE_MAX: '1000',
    ...common
  })
  http = `http://127.0.0.1:${httpPort}`
  // netsync's processes start in parallel (a second or more each); the agent waits for them all
  const started = await Promise.allSettled([
    startNetsync<{ nats: boolean }>('orchestrator', 'orchestrator',
      { NETSYNC_NATS_URL: nats.url, NETSYNC_LISTEN: `/ip4/127.0.0.1/tcp/${po}`, ...common }, (h) => h.nats),
    python('agent-2', p2, `agent-1=${a1},agent-3=${a3}`),
    python('agent-3', p3, `agent-1=${a1},agent-2=${a2}`, { NETSYNC_VALUE_MAX: '10' }), // disagrees above 10
    startAgent()
  ])
  const [o, b, c, a] = started
  if (o.status === 'fulfilled') orchestrator = o.value
  peers = [b, c].flatMap((r) => r.status === 'fulfilled' ? [r.value] : [])
  if (a.status === 'fulfilled') agent = a.value
  const failed = started.find((r) => r.status === 'rejected')
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
})

after(async () => {
  await agent?.stop()
  await Promise.all([orchestrator?.stop(), ...peers.map((p) => p.stop())])
  await link?.cut()
  await nc?.close()
  await nats?.stop()
  rmSync(journal, { recursive: true, force: true })
})

test('/healthz: exactly the contract\'s fields (and clock), its peers and its orchestrator connected', async () => {
  const { status, body } = await get('/healthz')
  assert.equal(status, 200)
  assert.deepEqual(Object.keys(body).sort(),
    ['buffer_cap', 'buffer_depth', 'clock', 'name', 'orchestrator_connected', 'peer_id', 'peers_connected'])
  assert.equal(body.name, 'agent-1')
  assert.equal(body.peer_id, (await peerIdForSeed('agent-1')).toString())
  assert.equal(body.buffer_depth, 0)
  assert.equal(body.buffer_cap, 2)
  assert.deepEqual(body.peers_connected, ['agent-2', 'agent-3'])
  assert.equal(body.orchestrator_connected, true)
  assert.ok(Math.abs(Number(body.clock) - Date.now() / 1000) < 5)
})

test('a POST is committed: 200 with the stream seq of its message; a repeat, also one in flight, gets the same answer', async () => {
  const first = await post({ key: 'k1', value: 7, cid: 'ts-c1' })
  assert.equal(first.status, 200, JSON.stringify(first.body))
  assert.deepEqual(Object.keys(first.body).sort(), ['cid', 'outcome', 'quorum_ms', 'stream_seq'])
  assert.equal(first.body.outcome, 'committed')
  const seq = Number(first.body.stream_seq)
  const { body, msgId } = await inStream(seq)
  assert.deepEqual([body.cid, body.key, body.value, body.proposer, msgId], ['ts-c1', 'k1', 7, 'agent-1', 'ts-c1'])
  assert.deepEqual(await post({ key: 'other', value: 8, cid: 'ts-c1' }), first) // whatever the repeat carries
  assert.deepEqual(await get('/intents/ts-c1'), { status: 200, body: { cid: 'ts-c1', state: 'committed', stream_seq: seq } })
  // two at once: the second waits for the first's answer, never a second intent
  const [a, b] = await Promise.all([post({ key: 'k2', value: 1, cid: 'ts-c2' }), post({ key: 'k2', value: 2, cid: 'ts-c2' })])
  assert.equal(a.status, 200)
  assert.deepEqual(b, a)
  assert.deepEqual((await inStream(Number(a.body.stream_seq))).body.value, 1)
  // without a cid it gets one; a malformed body is a 400 naming the field; an unknown cid a 404
  const fresh = await post({ key: 'k3', value: 3 })
  assert.equal(fresh.status, 200)
  assert.match(String(fresh.body.cid), /^[0-9a-f]{28}$/)
  assert.deepEqual(await post({ key: 'k', value: 1.5 }), { status: 400, body: { error: 'value is required: an integer', field: 'value' } })
  assert.equal((await get('/intents/never-posted')).status, 404)
})

test('mixed quorum: the TS agent and netsync agents vote in one quorum, each reading the others\' votes', async () => {
  const python = (i: number): string => `http://127.0.0.1:${peers[i]!.httpPort}`
  // agent-3 (netsync) disagrees above 10: a netsync proposer reaches 2 of 3 only with the TS agent's vote
  const viaPython = await post({ key: 'm', value: 50, cid: 'mx-1' }, python(0))
  assert.equal(viaPython.status, 200, JSON.stringify(viaPython.body))
  const viaTs = await post({ key: 'm', value: 50, cid: 'mx-2' })
  assert.equal(viaTs.status, 200, JSON.stringify(viaTs.body))
  // the TS agent (here up to 1000) refuses: the netsync proposer's 409 gives its reason word for word
  const outOfRange = await post({ key: 'm', value: 2000, cid: 'mx-3' }, python(0))
  assert.equal(outOfRange.status, 409)
  assert.match(String(outOfRange.body.reason), /^quorum impossible \(1\/2 agreed\): .*agent-1: value outside \[-1000000, 1000\]/)
  // and the netsync peers' refusals reach the TS proposer
  const refused = await post({ key: 'm', value: 1_000_001, cid: 'mx-4' })
  assert.deepEqual(Object.keys(refused.body).sort(), ['cid', 'outcome', 'reason'])
  assert.equal(refused.status, 409)
  assert.match(String(refused.body.reason), /^quorum impossible \(0\/2 agreed\): agent-1: value outside \[-1000000, 1000\]; agent-[23]: value outside/)
  // as a peer it serves ping, and remembers what it agreed to as proposer (m, 50 under mx-2)
  const caller = await createNode({ privateKey: await privateKeyForSeed('agent-role-caller'), listen: '/ip4/127.0.0.1/tcp/0' })
  try {
    const tsAgent = { addr: multiaddr(agent1) }
    const ask = async (frame: JsonObject): Promise<JsonObject> => await caller.request(tsAgent, SENTIMENT_PROTOCOL, frame, { timeoutMs: 3000 })
    assert.deepEqual(await ask({ type: 'ping' }), { type: 'pong' })
    assert.deepEqual(await ask({ type: 'propose', cid: 'mx-2', key: 'm', value: 51, proposer: 'agent-9' }),
      { cid: 'mx-2', vote: 'disagree', voter: 'agent-1', reason: 'agreed to a different proposal under this cid' })
    assert.deepEqual(await ask({ type: 'propose', cid: 'mx-2', key: 'm', value: 50, proposer: 'agent-9' }),
      { cid: 'mx-2', vote: 'agree', voter: 'agent-1' })
  } finally {
    await caller.stop()
  }
})

test('telemetry: netsync\'s scout hears the TS agent and names it in its summaries on NATS', async () => {
  const sub = nc.subscribe(SUMMARY_SUBJECT)
  const timer = setTimeout(() => sub.unsubscribe(), 5000)
  let named: JsonObject | undefined
  for await (const msg of sub) {
    const agents = (fromJson(msg.string()) as JsonObject).agents as JsonObject
    if (agents['agent-1'] !== undefined) {
      named = agents['agent-1'] as JsonObject
      break
    }
  }
  clearTimeout(timer)
  sub.unsubscribe()
  assert.ok(named !== undefined, 'no summary named agent-1 within 5 s')
  assert.equal(named.buffer_depth_max, 0)
  assert.equal(named.peers_reachable_min, 2)
})

/** A sample of the agent's /metrics. */
async function metric (sample: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `))
  return line === undefined ? NaN : Number(line.slice(sample.length + 1))
}

test('orchestrator unreachable: 202, then replayed; new decisions go behind the buffer; a full buffer answers 429', async () => {
  await link.cut()
  await until('the agent lost the orchestrator', async () => (await get('/healthz')).body, { ok: (h) => h !== false && h?.orchestrator_connected === false, timeoutMs: 5000, everyMs: 50 })
  const first = await post({ key: 'p', value: 1, cid: 'ts-p1' })
  assert.equal(first.status, 202, JSON.stringify(first.body))
  assert.deepEqual(Object.keys(first.body).sort(), ['cid', 'outcome', 'quorum_ms'])
  assert.equal(first.body.outcome, 'pending-commit')
  assert.deepEqual(await get('/intents/ts-p1'), { status: 200, body: { cid: 'ts-p1', state: 'pending-commit' } })
  assert.equal((await get('/healthz')).body.buffer_depth, 1)
  // after four failed replays the next is 1.6 s away: the orchestrator is back, but ts-p1 still buffered
  await until('four failed replays', async () => await metric('netsync_replay_failures_total'), { ok: (n) => typeof n === 'number' && n >= 4, timeoutMs: 5000, everyMs: 50 })
  await link.heal()
  const second = await post({ key: 'p', value: 2, cid: 'ts-p2' })
  assert.equal(second.status, 202, `decided while ts-p1 waits, it goes behind it: ${JSON.stringify(second.body)}`)
  const full = { status: 429, body: { cid: 'ts-p3', outcome: 'rejected', reason: 'buffer-full' } }
  assert.deepEqual(await post({ key: 'p', value: 3, cid: 'ts-p3' }), full)
  assert.deepEqual(await get('/intents/ts-p3'), { status: 200, body: { cid: 'ts-p3', state: 'rejected' } })
  const seqs: number[] = []
  for (const [cid, posted] of [['ts-p1', first], ['ts-p2', second]] as const) {
    const done = await until(`${cid} committed by the replay`, async () => (await get(`/intents/${cid}`)).body,
      { ok: (b) => b !== false && b?.state === 'committed', timeoutMs: 10_000, everyMs: 50 })
    assert.equal((await inStream(Number(done.stream_seq))).body.cid, cid)
    assert.deepEqual(await post({ key: 'p', value: 9, cid }),
      { status: 200, body: { cid, outcome: 'committed', stream_seq: done.stream_seq, quorum_ms: posted.body.quorum_ms } })
    seqs.push(Number(done.stream_seq))
  }
  assert.ok(seqs[0]! < seqs[1]!, `committed in decision order: ${seqs.join(' < ')}`)
  assert.deepEqual(await post({ key: 'p', value: 3, cid: 'ts-p3' }), full) // a rejection is an answer too
  assert.deepEqual(await Promise.all(['netsync_buffer_depth', 'netsync_buffer_cap', 'netsync_replays_total',
    'netsync_intents_total{outcome="rejected"}', 'netsync_nats_reachable'].map(metric)), [0, 2, 2, 1, 1])
  assert.ok(await metric('process_resident_memory_bytes') > 0)
})

test('a kill and a restart keep its answers; a torn last line is dropped, a damaged earlier one stops the start naming it', async () => {
  const before = await Promise.all(['ts-c1', 'ts-p1', 'ts-p2', 'ts-p3', 'mx-4'].map(async (cid) => await post({ key: 'x', value: 9, cid })))
  agent!.proc.kill('SIGKILL')
  await agent!.stop()
  const answers = join(journal, ANSWERS_CURRENT)
  appendFileSync(answers, '{"cid":"torn","status":200,"bo') // a kill inside a write
  agent = await startAgent(() => true)
  const again = await Promise.all(['ts-c1', 'ts-p1', 'ts-p2', 'ts-p3', 'mx-4'].map(async (cid) => await post({ key: 'y', value: 10, cid })))
  assert.deepEqual(again, before)
  assert.equal((await get('/intents/torn')).status, 404)
  assert.ok(readFileSync(answers, 'utf8').endsWith('\n'), 'the torn line was cut off')
  await agent.stop()
  agent = undefined
  const lines = readFileSync(answers, 'utf8').split('\n')
  writeFileSync(answers, [lines[0], 'not json', ...lines.slice(1)].join('\n'))
  const damaged = spawnSync(process.execPath, [CLI, 'agent'], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 20_000 })
  assert.notEqual(damaged.status, 0)
  assert.ok(damaged.stderr.includes(`${answers}:2:`), damaged.stderr)
})

test('the command: an unknown role exits 2 with its usage; a bad variable exits 2 naming it', () => {
  const unknown = spawnSync(process.execPath, [CLI, 'agnet'], { encoding: 'utf8' })
  assert.equal(unknown.status, 2)
  assert.match(unknown.stderr, /^usage: net-sync \{agent\|orchestrator\|projector\}/)
  const bad = spawnSync(process.execPath, [CLI, 'agent'], { env: { ...env, NETSYNC_BUFFER_CAP: 'lots' }, encoding: 'utf8' })
  assert.equal(bad.status, 2)
  assert.match(bad.stderr, /^net-sync agent: NETSYNC_BUFFER_CAP: .*not an integer/)
  const missing = spawnSync(process.execPath, [CLI, 'agent'], { env: { ...env, NETSYNC_ORCHESTRATOR: '' }, encoding: 'utf8' })
  assert.equal(missing.status, 2)
  assert.match(missing.stderr, /NETSYNC_ORCHESTRATOR is required/)
})
