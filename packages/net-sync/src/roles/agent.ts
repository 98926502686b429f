/**
 * `net-sync agent` (docs/contract.md, "Agent HTTP API"): takes intents over HTTP, gathers a quorum of its
 * peers over `/root-solar/sentiment/1.0.0`, commits decisions through the orchestrator over
 * `/root-solar/decision/1.0.0`, and keeps what cannot be committed now in the journaled pending-commit
 * buffer, replayed head first. Each answer is remembered by cid (answers.ts) before it is sent. The
 * behaviour where the contract is terse is netsync/agent.py's.
 */
import { mkdtempSync } from 'node:fs'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { ANSWERS_KEPT, AnswerLog, type Answer } from '../answers.js'
import { BufferFullError, PendingCommitBuffer, type Pending, type Reservation } from '../buffer.js'
import type { RoleHandle } from '../cli.js'
import { monotonicNow, thisBoot } from '../clock.js'
import { commitDecision, type CommitResult } from '../commit.js'
import { announce, KEPT_RECORD } from '../bugs.js'
import { agentConfig, type AgentConfig, type Env } from '../config.js'
import { close, httpServer, json, listen, type Reply, type Request, type Route } from '../http.js'
import { privateKeyForSeed } from '../identity.js'
import { BadRequestError, newCid, parseIntent } from '../intents.js'
import { keepConnected } from '../keepalive.js'
import type { Log } from '../log.js'
import { AgentMetrics } from '../metrics.js'
import { createNode, type FrameNode } from '../node.js'
import { gatherQuorum, serveVotes, Votes } from '../quorum.js'
import { ReplayLoop } from '../replay.js'
import { TELEMETRY_TOPIC, telemetryPubsub } from '../telemetry.js'
import { DECISION_PROTOCOL, SENTIMENT_PROTOCOL, toJson, type JsonObject } from '../wire.js'

/** journal-late (bugs.ts): how long after its 202 a decision is journaled */
const JOURNAL_LATE_MS = 2000

/** reject-after-commit (bugs.ts): the slot of an intent decided with a full buffer, which holds nothing */
const NO_ROOM: Reservation = {
  append: async () => { throw new BufferFullError('the buffer is full') },
  release: () => {}
}

function rejected (cid: string): Answer {
  return { status: 429, body: { cid, outcome: 'rejected', reason: 'buffer-full' } }
}

function decodeCid (raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch { // not percent-encoding: the cid as written (no cid has a `%`, so it is unknown)
    return raw
  }
}

export class Agent {
  readonly metrics: AgentMetrics
  /** what this agent agreed to: its own vote as proposer and its answers to its peers share it */
  readonly votes: Votes
  private readonly boot = thisBoot() // a replay's age counts on the monotonic clock within one boot
  private readonly inflight = new Map<string, Promise<void>>()
  private readonly peerOk = new Map<string, boolean>()
  private natsReachable = false
  private readonly replay: ReplayLoop
  private readonly bugs: ReadonlySet<string>
  /** keep-every-intent (bugs.ts): a debug record of every decided intent, never trimmed */
  private readonly kept: string[] = []
  private readonly startedAt = Date.now() / 1000
  private readonly startedMono = monotonicNow()

  constructor (readonly config: AgentConfig, private readonly log: Log, readonly node: FrameNode,
    readonly buffer: PendingCommitBuffer, readonly answers: AnswerLog) {
    this.metrics = new AgentMetrics(config.bufferCap)
    this.bugs = config.bugs
    this.votes = new Votes(config.valueMin, config.valueMax)
    this.replay = new ReplayLoop(buffer, {
      intervalMs: config.replayIntervalMs,
      commit: async (entry) => await this.commit(entry),
      onCommitted: (entry, seq) => { this.replayed(entry, seq) },
      onFailure: (entry, why) => {
        this.metrics.replayFailures.inc()
        if (why instanceof Error) this.log.error('journal write failed', { cid: entry.cid, error: why.message })
      }
    })
    this.refreshGauges()
  }

  // -- deciding -----------------------------------------------------------------------------------

  /** The answer to `POST /intents` for this intent: a repeat's earlier answer, or a new decision's. */
  async submit (key: string, value: bigint, givenCid: string | undefined): Promise<Answer> {
    const cid = givenCid ?? newCid()
    // A repeat waits for its first request's answer; if that one failed without one (a 500), this one
    // is decided as if it came first.
    for (let first = this.inflight.get(cid); first !== undefined; first = this.inflight.get(cid)) await first
    const earlier = this.answers.get(cid)
    if (earlier !== undefined) return earlier
    if (this.buffer.contains(cid)) return { status: 202, body: { cid, outcome: 'pending-commit' } }
    // The slot is taken before any side effect, so a 429 always comes before a quorum is sought and a
    // decision whose commit failed always finds room.
    const slot = this.buffer.reserve()
    // buggify reject-after-commit: with a full buffer, a quorum and a direct commit first, the 429 only if that fails
    if (slot === undefined && !this.bugs.has('reject-after-commit')) return this.remember(cid, rejected(cid))
    const { promise, resolve } = Promise.withResolvers<void>()
    this.inflight.set(cid, promise)
    try {
      return await this.decide(cid, key, value, slot ?? NO_ROOM)
    } finally {
      slot?.release()
      this.inflight.delete(cid)
      resolve()
    }
  }

  private async decide (cid: string, key: string, value: bigint, slot: Reservation): Promise<Answer> {
    const t0 = performance.now()
    const result = await gatherQuorum(this.node, this.votes, { cid, key, value, proposer: this.config.name }, {
      quorum: this.config.quorum,
      timeoutMs: this.config.intentTimeoutMs,
      peers: this.config.peers,
      onPeer: (name, reachable) => {
        this.peerOk.set(name, reachable)
        this.metrics.peers.set(this.peersReachable())
      }
    })
    const quorumS = (performance.now() - t0) / 1000
    const quorumMs = Math.round(quorumS * 1e6) / 1000
    this.metrics.quorum.observe(quorumS)
    if (!result.decided) {
      this.log.info('aborted', { cid, reason: result.reason, quorum_ms: quorumMs })
      return this.remember(cid, { status: 409, body: { cid, outcome: 'aborted', reason: result.reason } })
    }
    // keep-every-intent: a flat copy, 4 KiB as netsync's; padEnd's own result is a rope sharing its padding (850 bytes)
    if (this.bugs.has('keep-every-intent')) this.kept.push(Buffer.from(`${cid} ${key} ${value} decided in ${quorumMs} ms `.padEnd(KEPT_RECORD, '.'), 'latin1').toString('latin1'))
    const now = Date.now() / 1000
    const entry: Pending = {
      cid, key, value, proposer: this.config.name, decided_at: now, first_attempt_at: now, attempt: 1,
      first_attempt_mono: monotonicNow(), boot: this.boot
    }
    if (this.buffer.length === 0 || slot === NO_ROOM) { // else it goes behind what is buffered: commits keep decision order
      const commit = await this.commit(entry)
      if (commit.committed) {
        this.log.info('committed', { cid, stream_seq: commit.seq, quorum_ms: quorumMs })
        return this.remember(cid, { status: 200, body: { cid, outcome: 'committed', stream_seq: commit.seq, quorum_ms: quorumMs } })
      }
    }
    try {
      if (this.bugs.has('journal-late')) { // buggify: journaled two seconds after the 202
        setTimeout(() => { void this.journalLate(entry) }, JOURNAL_LATE_MS)
      } else if (this.bugs.has('journal-after-answer')) { // buggify: journaled once the 202 is on its way
        setImmediate(() => { void this.journalLate(entry) })
      } else {
        await slot.append(entry) // fsynced before the 202
      }
    } catch (err) {
      if (!(err instanceof BufferFullError)) throw err
      if (slot !== NO_ROOM) this.log.error('buffer full despite reservation', { cid }) // cannot happen while slots hold; never drop silently
      return this.remember(cid, rejected(cid))
    }
    this.refreshGauges()
    this.replay.wake()
    this.log.info('pending-commit', { cid, depth: this.buffer.length, quorum_ms: quorumMs })
    return this.remember(cid, { status: 202, body: { cid, outcome: 'pending-commit', quorum_ms: quorumMs } })
  }

  /** journal-late, journal-after-answer (bugs.ts): the decision reaches the journal after its 202. */
  private async journalLate (entry: Pending): Promise<void> {
    try {
      await this.buffer.append(entry)
      this.refreshGauges()
      this.replay.wake()
    } catch (err) {
      this.log.error('journal write failed', { cid: entry.cid, error: (err as Error).message })
    }
  }

  /** One attempt to commit `entry`; never throws (the replay loop must not end on a failure). */
  private async commit (entry: Pending): Promise<CommitResult> {
    const t0 = performance.now()
    let result: CommitResult
    try {
      const sent = this.bugs.has('forget-first-attempt') || this.bugs.has('trust-journal-clock') ? this.agedByWallClock(entry) : entry
      result = await commitDecision(this.node, this.config.orchestrator, sent,
        { timeoutMs: this.config.commitTimeoutMs, boot: this.boot })
    } catch (err) {
      result = { committed: false, status: 'error', error: `${(err as Error).name}: ${(err as Error).message}` }
    }
    this.natsReachable = result.committed
    this.metrics.nats.set(result.committed ? 1 : 0)
    if (result.committed) {
      this.metrics.commit.observe((performance.now() - t0) / 1000)
    } else if (result.status === 'unreachable') {
      this.log.warning('orchestrator unreachable', { cid: entry.cid, error: result.error })
    } else {
      this.log.warning('commit refused', { cid: entry.cid, status: result.status, error: result.error })
    }
    return result
  }

  /** forget-first-attempt, trust-journal-clock (bugs.ts): an intent decided before this process started is
   * aged by the wall clock alone, and with forget-first-attempt from this process's start. */
  private agedByWallClock (entry: Pending): Pending {
    const earlier = entry.boot !== this.boot || (entry.first_attempt_mono ?? 0) < this.startedMono
    if (!earlier) return entry
    const at = this.bugs.has('forget-first-attempt') ? Math.max(entry.first_attempt_at, this.startedAt) : entry.first_attempt_at
    const age = Math.max(0, Date.now() / 1000 - at)
    return { ...entry, first_attempt_at: at, first_attempt_mono: monotonicNow() - age, boot: this.boot }
  }

  /** The replay loop committed `entry`: its cid's answer is now 200 with the seq. */
  private replayed (entry: Pending, seq: number): void {
    this.metrics.replays.inc()
    this.refreshGauges()
    const body: JsonObject = { cid: entry.cid, outcome: 'committed', stream_seq: seq }
    const earlier = this.answers.get(entry.cid)
    if (earlier?.body.quorum_ms !== undefined) body.quorum_ms = earlier.body.quorum_ms
    try {
      this.answers.put(entry.cid, 200, body)
    } catch (err) { // committed all the same; a repeat gets the 202 it got before
      this.log.error('answer not kept', { cid: entry.cid, error: (err as Error).message })
    }
    this.log.info('replayed', { cid: entry.cid, stream_seq: seq, attempt: entry.attempt })
  }

  /** Keep `answer` for `cid` (in the file before it is sent; a failed write throws: a 500, not remembered). */
  private remember (cid: string, answer: Answer): Answer {
    this.answers.put(cid, answer.status, answer.body)
    this.metrics.intents.inc({ outcome: String(answer.body.outcome) })
    return answer
  }

  private peersReachable (): number {
    return [...this.peerOk.values()].filter((ok) => ok).length
  }

  private refreshGauges (): void {
    this.metrics.bufferDepth.set(this.buffer.length)
    this.metrics.pending.set(this.buffer.length)
  }

  // -- reading ------------------------------------------------------------------------------------

  /** `GET /intents/{cid}`. */
  stateOf (cid: string): Reply {
    if (this.buffer.contains(cid)) return json(200, { cid, state: 'pending-commit' })
    const answer = this.answers.get(cid)
    if (answer === undefined) return json(404, { cid, error: 'unknown cid' })
    const body: JsonObject = { cid, state: answer.body.outcome ?? null }
    if (answer.body.stream_seq !== undefined) body.stream_seq = answer.body.stream_seq
    return json(200, body)
  }

  /** `GET /healthz`: the contract's fields, and `clock`, the agent's wall clock (read by docs/clock.md's nemesis). */
  health (): JsonObject {
    return {
      name: this.config.name,
      peer_id: this.node.peerId,
      buffer_depth: this.buffer.length,
      buffer_cap: this.config.bufferCap,
      peers_connected: this.config.peers.filter((p) => this.node.isConnected(p)).map((p) => p.name).sort(),
      orchestrator_connected: this.node.isConnected(this.config.orchestrator),
      clock: Date.now() / 1000
    }
  }

  /** The peer-health message it publishes (docs/contract.md, "Telemetry"). */
  healthSample (): JsonObject {
    return {
      agent: this.config.name,
      t: Date.now() / 1000,
      peers_reachable: this.peersReachable(),
      buffer_depth: this.buffer.length,
      nats_reachable: this.natsReachable
    }
  }

  routes (): Route[] {
    return [
      {
        method: 'POST',
        path: '/intents',
        handler: async (req: Request) => {
          const body = await req.body()
          let intent
          try {
            intent = parseIntent(body, this.bugs)
          } catch (err) {
            if (err instanceof BadRequestError) return json(400, err.toJSON())
            throw err
          }
          const answer = await this.submit(intent.key, intent.value, intent.cid)
          return json(answer.status, answer.body)
        }
      },
      { method: 'GET', path: '/intents/', handler: (req) => this.stateOf(decodeCid(req.path.slice('/intents/'.length))) },
      { method: 'GET', path: '/healthz', handler: () => json(200, this.health()) },
      {
        method: 'GET',
        path: '/metrics',
        handler: async () => {
          this.refreshGauges()
          const { contentType, body } = await this.metrics.text()
          return { status: 200, text: body, contentType }
        }
      }
    ]
  }

  // -- running ------------------------------------------------------------------------------------

  /** The replay loop, the kept connections and the telemetry, until `signal` aborts. */
  async run (signal: AbortSignal): Promise<void> {
    const kept = [
      ...this.config.peers.map((p) => ({ ...p, protocol: SENTIMENT_PROTOCOL })),
      { ...this.config.orchestrator, protocol: DECISION_PROTOCOL }
    ]
    await Promise.all([
      this.replay.run(signal),
      keepConnected(this.node, kept, { signal }),
      this.publishHealth(signal)
    ])
  }

  private async publishHealth (signal: AbortSignal): Promise<void> {
    const pubsub = this.node.pubsub
    while (pubsub !== undefined && !signal.aborted) {
      try {
        await pubsub.publish(TELEMETRY_TOPIC, new TextEncoder().encode(toJson(this.healthSample())))
      } catch {} // best effort (no subscriber yet, say): the next interval tries again
      await sleep(this.config.telemetryIntervalMs, undefined, { signal }).catch(() => {})
    }
  }
}

/** Starts the agent: journal and answers read back, libp2p listening, then HTTP; resolves once it serves. */
export async function start (env: Env, log: Log): Promise<RoleHandle> {
  const config = agentConfig(env) // a ConfigError: the command exits 2 naming the variable
  announce(config.bugs, 'agent', log)
  const bugs = config.bugs
  // buggify buffer-unbounded: no cap at all; cap-off-by-one: the buffer's check admits one more
  const cap = bugs.has('buffer-unbounded') ? 1 << 30 : config.bufferCap + (bugs.has('cap-off-by-one') ? 1 : 0)
  const opened: Array<() => Promise<void> | void> = []
  const undo = async (): Promise<void> => { for (const f of opened.reverse()) await f() }
  let agent: Agent
  let server: Server
  try {
    // A damaged journal or answers file stops the start here, naming the file and line.
    const buffer = await PendingCommitBuffer.open(config.journalDir, cap, { fsync: !bugs.has('journal-no-fsync') })
    opened.push(async () => await buffer.close())
    // buggify forget-answers: kept where no restart finds them again, as if in memory only
    const answers = AnswerLog.open(bugs.has('forget-answers') ? mkdtempSync(join(tmpdir(), 'answers-')) : config.journalDir, ANSWERS_KEPT)
    opened.push(() => { answers.close() })
    const node = await createNode({ privateKey: await privateKeyForSeed(config.identitySeed), listen: config.listen, pubsub: telemetryPubsub() })
    opened.push(async () => await node.stop())
    agent = new Agent(config, log, node, buffer, answers)
    await serveVotes(node, agent.votes, config.name)
    server = httpServer(agent.routes(), log)
    await listen(server, config.httpPort)
    opened.push(async () => await close(server))
  } catch (err) {
    log.error('cannot start', { error: (err as Error).message })
    await undo()
    throw err
  }
  const stopping = new AbortController()
  const running = agent.run(stopping.signal)
  log.info('agent up', {
    peer_id: agent.node.peerId,
    peers: config.peers.map((p) => p.name),
    quorum: config.quorum,
    buffered: agent.buffer.length
  })
  return {
    stop: async () => {
      stopping.abort()
      await running
      await undo()
    }
  }
}
