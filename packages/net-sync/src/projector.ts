/**
 * The projector, the only writer of SurrealDB (docs/contract.md, "Projector" and "Dead letters"), as a
 * library: a durable pull consumer on the stream, fetched in batches; each commitment upserted into
 * `sentiment:<cid>` and acked only once the write succeeded, so a crash at any moment leaves the message
 * to be redelivered, and a redelivery rewrites the same row. During a SurrealDB outage nothing is acked:
 * the message in hand is retried with backoff (capped at 2 s) while the ones behind it are kept alive
 * with in-progress acks; a message no write can store is dead-lettered (terminated, logged, counted).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node'
import { AckPolicy, DeliverPolicy, JetStreamApiError, jetstream, jetstreamManager, type Consumer, type JsMsg } from '@nats-io/jetstream'
import { ServerError } from 'surrealdb'
import type { ProjectorConfig } from './config.js'
import type { Log } from './log.js'
import { writeSentiment } from './store.js'
import { COMMAND_SUBJECT } from './lookup.js'
import { DeadLetter, logDeadLetter, Malformed, parseBody, type Commitment } from './deadletter.js'
import { refused, SurrealSession } from './surreal-session.js'
import { ProjectorMetrics } from './projector-metrics.js'

export const BATCH = 32
/** How long one fetch waits for its batch to fill (nats.js's least). */
export const FETCH_EXPIRES_MS = 1_000
export const BACKOFF_FIRST_MS = 100
export const BACKOFF_CAP_MS = 2_000
/** A write SurrealDB refuses this many times (about 7 s with the backoff) is dead-lettered. */
export const REFUSALS = 8
const NATS_API_TIMEOUT_MS = 5_000
const CONSUMER_NOT_FOUND = 10014
const STREAM_NOT_FOUND = 10059

/** What `GET /healthz` answers (docs/contract.md, "Health"). */
export interface ProjectorHealth { name: string, connected_nats: boolean, connected_surreal: boolean, last_seq: number }

function describe (err: unknown): string {
  if (err instanceof ServerError) {
    return `${err.name}(${JSON.stringify(err.message)}, kind=${err.kind}, detail=${err.details?.kind ?? 'none'})`
  }
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}

function notFound (err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === CONSUMER_NOT_FOUND || err.code === STREAM_NOT_FOUND)
}

export class Projector {
  readonly metrics = new ProjectorMetrics()
  readonly surreal: SurrealSession
  lastSeq = 0
  /** Set once the durable consumer is bound on the stream, cleared when the connection drops or
   * JetStream says the stream or consumer is gone: /healthz reads it and asks NATS nothing. */
  private consuming = false
  /** Connected to a NATS server now (the client's status events). */
  private natsUp = false
  private nc: NatsConnection | undefined
  private readonly stopping = new AbortController()
  private running: Promise<void> | undefined

  constructor (readonly config: ProjectorConfig, readonly log: Log) {
    this.surreal = new SurrealSession({
      url: config.surrealUrl, user: config.surrealUser, pass: config.surrealPass, ns: config.surrealNs,
      db: config.surrealDb, changefeed: config.changefeedRetention
    }, log, (up) => { this.metrics.surrealConnected.set(up ? 1 : 0) })
  }

  health (): ProjectorHealth {
    return {
      name: this.config.name,
      connected_nats: this.consuming && this.nc !== undefined && !this.nc.isClosed() && this.natsUp,
      connected_surreal: this.surreal.connected,
      last_seq: this.lastSeq
    }
  }

  /** Starts connecting and consuming in the background; `stop` ends it. */
  start (): void {
    this.running ??= this.run().catch((err: unknown) => {
      this.log.error('projector failed', { error: describe(err) })
    })
  }

  /** Hands back what it holds unfinished (nak), flushes the last acks and closes both connections. */
  async stop (): Promise<void> {
    this.stopping.abort() // the command logs `stopping` with its signal
    await this.running
  }

  private get stopped (): boolean { return this.stopping.signal.aborted }

  /** Sleep, but wake at once when stopping. */
  private async pause (ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.stopping.signal }).catch(() => {})
  }

  private async run (): Promise<void> {
    const watcher = this.surreal.watch(this.stopping.signal, async (ms) => { await this.pause(ms) })
    try {
      await this.connectNats()
      if (!this.stopped) await this.consume()
    } finally {
      await watcher
      await this.surreal.drop()
      const nc = this.nc
      if (nc !== undefined) {
        await nc.flush().catch(() => {}) // the last acks
        await nc.close().catch((err: unknown) => { this.log.warning('nats close failed', { error: describe(err) }) })
      }
      this.log.info('stopped', { last_seq: this.lastSeq })
    }
  }

  // -- NATS: the connection and the durable consumer ------------------------------------------------

  private async connectNats (): Promise<void> {
    let delay = BACKOFF_FIRST_MS
    while (!this.stopped) {
      try {
        const nc = await connect({
          servers: this.config.natsServers, name: this.config.name, reconnect: true,
          maxReconnectAttempts: -1, reconnectTimeWait: 500, timeout: 2_000
        })
        this.nc = nc
        this.natsUp = true
        this.metrics.natsConnected.set(1)
        this.log.info('nats connected', { url: nc.getServer() })
        void this.followStatus(nc)
        return
      } catch (err) {
        this.log.warning('nats connect failed, retrying', { error: describe(err), retry_in: delay / 1000 })
        await this.pause(delay)
        delay = Math.min(delay * 2, BACKOFF_CAP_MS)
      }
    }
  }

  private async followStatus (nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.consuming = false
        this.natsUp = false
        this.metrics.natsConnected.set(0)
        this.log.warning('nats disconnected')
      } else if (s.type === 'reconnect') {
        this.natsUp = true
        this.metrics.natsConnected.set(1)
        this.log.info('nats reconnected', { url: nc.getServer() })
        void this.confirmConsumer(nc)
      }
    }
  }

  /** After a reconnect, look the consumer up once, so /healthz says it is in place while no message
   * arrives to show it; retried while connected. Gone: left to the fetch loop, which sets it up again. */
  private async confirmConsumer (nc: NatsConnection): Promise<void> {
    let delay = BACKOFF_FIRST_MS
    while (this.natsUp && !nc.isClosed() && !this.stopped) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: NATS_API_TIMEOUT_MS, checkAPI: false })
        await jsm.consumers.info(this.config.stream, this.config.consumer)
        this.consuming = true
        return
      } catch (err) {
        if (notFound(err)) return
        this.log.warning('consumer not confirmed after a reconnect', { error: describe(err), retry_in: delay / 1000 })
        await this.pause(delay)
        delay = Math.min(delay * 2, BACKOFF_CAP_MS)
      }
    }
  }

  /** Wait for the stream (the orchestrator creates it), make the durable consumer when missing, bind it. */
  private async subscribe (nc: NatsConnection): Promise<Consumer | undefined> {
    const { stream, consumer: name, ackWaitMs } = this.config
    this.consuming = false
    let delay = BACKOFF_FIRST_MS
    let waitingLogged = false
    while (!this.stopped) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: NATS_API_TIMEOUT_MS, checkAPI: false })
        await jsm.streams.info(stream)
        try {
          const wait = (await jsm.consumers.info(stream, name)).config.ack_wait
          if (wait !== undefined && Math.abs(wait - nanos(ackWaitMs)) > nanos(1)) {
            this.log.warning('existing consumer has a different ack_wait', { consumer: name, ack_wait: wait / 1e9 })
          }
        } catch (err) {
          if (!(err instanceof JetStreamApiError && err.code === CONSUMER_NOT_FOUND)) throw err
          await jsm.consumers.add(stream, {
            name, durable_name: name, deliver_policy: DeliverPolicy.All, ack_policy: AckPolicy.Explicit,
            ack_wait: nanos(ackWaitMs), filter_subject: COMMAND_SUBJECT
          })
          this.log.info('consumer created', { stream, consumer: name })
        }
        const consumer = await jetstream(nc, { timeout: NATS_API_TIMEOUT_MS }).consumers.get(stream, name)
        this.consuming = true
        this.log.info('consuming', { stream, consumer: name })
        return consumer
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND) {
          if (!waitingLogged) this.log.info('waiting for the stream', { stream })
          waitingLogged = true
        } else {
          this.log.warning('consumer setup failed, retrying', { error: describe(err), retry_in: delay / 1000 })
        }
      }
      await this.pause(delay)
      delay = Math.min(delay * 2, BACKOFF_CAP_MS)
    }
    return undefined
  }

  /** Whether a fetch's failure means the stream or the consumer is gone (a deleted one answers a fetch
   * with 409 or "no responders", 503): then it is set up again. NATS away is not that. */
  private async consumerGone (nc: NatsConnection, err: unknown): Promise<boolean> {
    if (notFound(err)) return true
    const code = (err as { code?: unknown }).code
    if (!(err instanceof Error && err.name === 'JetStreamStatusError' && (code === 409 || code === 503))) return false
    try {
      const jsm = await jetstreamManager(nc, { timeout: NATS_API_TIMEOUT_MS, checkAPI: false })
      await jsm.consumers.info(this.config.stream, this.config.consumer)
      return false
    } catch (infoErr) {
      return notFound(infoErr)
    }
  }

  // -- consuming ------------------------------------------------------------------------------------

  private async consume (): Promise<void> {
    const nc = this.nc
    if (nc === undefined) return
    let consumer = await this.subscribe(nc)
    let delay = BACKOFF_FIRST_MS
    while (consumer !== undefined && !this.stopped) {
      try {
        await this.batch(consumer)
        delay = BACKOFF_FIRST_MS
      } catch (err) {
        if (await this.consumerGone(nc, err)) {
          this.log.warning('consumer gone, setting it up again', { error: describe(err) })
          consumer = await this.subscribe(nc)
          continue
        }
        this.log.warning('fetch failed, retrying', { error: describe(err), retry_in: delay / 1000 })
        await this.pause(delay)
        delay = Math.min(delay * 2, BACKOFF_CAP_MS)
      }
    }
  }

  /** One fetch: each message projected as it arrives, in order. `held` is what came and is not finished,
   * the one in hand first: kept alive while a write is retried, handed back when stopping. */
  private async batch (consumer: Consumer): Promise<void> {
    const messages = await consumer.fetch({ max_messages: BATCH, expires: FETCH_EXPIRES_MS })
    // a fetch waits out a NATS outage (nats.js re-pulls after the reconnect): stopping ends it at once
    const stopFetch = (): void => { messages.stop() }
    this.stopping.signal.addEventListener('abort', stopFetch, { once: true })
    const held: JsMsg[] = []
    let ended = false
    let failure: unknown
    let wake: (() => void) | undefined
    const pump = (async () => {
      try {
        for await (const m of messages) { held.push(m); wake?.() }
      } catch (err) {
        failure = err
      } finally {
        ended = true
        wake?.()
      }
    })()
    try {
      for (;;) {
        const m = held[0]
        if (m === undefined) {
          if (ended) break
          await new Promise<void>((resolve) => { wake = resolve })
          wake = undefined
          continue
        }
        this.consuming = true // messages came: the consumer is there, whatever a lookup said
        if (this.stopped || !await this.handle(m, held)) {
          this.handBack(held)
          break
        }
        held.shift()
      }
    } finally {
      this.stopping.signal.removeEventListener('abort', stopFetch)
      messages.stop()
      await pump
    }
    if (failure !== undefined) throw failure
  }

  /** Hand back messages held but not finished, for prompt redelivery. */
  private handBack (held: JsMsg[]): void {
    if (held.length === 0) return
    this.log.info('handed back unfinished messages', { seqs: held.map((m) => m.seq) })
    for (const m of held.splice(0)) {
      try { m.nak() } catch {}
    }
  }

  // -- one message ----------------------------------------------------------------------------------

  /** Project one message; false when stopping before it could be written. */
  private async handle (m: JsMsg, held: readonly JsMsg[]): Promise<boolean> {
    const seq = m.seq
    let body: Commitment
    try {
      body = parseBody(m.data)
      if (this.config.bugs.has('wrong-value')) body = { ...body, value: lastValueOf(body.key, held) ?? body.value }
      const early = this.config.bugs.has('ack-before-write') // buggify: acked before the write
      if (early) m.ack()
      if (!await this.write(body, seq, held)) return false
    } catch (err) {
      if (err instanceof Malformed) this.deadLetter(m, new DeadLetter('malformed', err.message))
      else if (err instanceof DeadLetter) this.deadLetter(m, err)
      else throw err
      return true
    }
    try {
      m.ack()
    } catch (err) { // it will be redelivered, and rewrite the same row
      this.log.warning('ack failed', { cid: body.cid, seq, error: describe(err) })
    }
    this.lastSeq = seq
    this.metrics.projected.inc()
    this.metrics.lastSeq.set(seq)
    this.log.info('projected', { cid: body.cid, seq, key: body.key, value: body.value })
    return true
  }

  /** The dead-letter policy: one error line, the counter, and a term, so JetStream never redelivers it.
   * The message stays in the stream. */
  private deadLetter (m: JsMsg, dead: DeadLetter): void {
    logDeadLetter(this.log, m.data, m.seq, dead)
    this.metrics.deadLetters.inc()
    try {
      m.term()
    } catch (err) { // redelivered after ack_wait, and dead-lettered again
      this.log.warning('term failed', { seq: m.seq, error: describe(err) })
    }
  }

  /** Write until SurrealDB takes it; false when stopping first; DeadLetter once refused REFUSALS times. */
  private async write (body: Commitment, seq: number, held: readonly JsMsg[]): Promise<boolean> {
    const { cid } = body
    let delay = BACKOFF_FIRST_MS
    let attempt = 0
    let refusals = 0
    let keepAlive: NodeJS.Timeout | undefined
    try {
      for (;;) {
        attempt++
        try {
          await this.surreal.run(async (db) => { await writeSentiment(db, { ...body, seq }, this.config.bugs.has('duplicate-rows')) })
          if (attempt > 1) this.log.info('write succeeded after retries', { cid, seq, attempts: attempt })
          return true
        } catch (err) {
          this.metrics.writeFailures.inc()
          // buggify store-failure-refused: SurrealDB's answer that its store failed counted as a refusal
          if (refused(err) || (this.config.bugs.has('store-failure-refused') && err instanceof ServerError)) refusals++
          if (refusals >= REFUSALS) {
            throw new DeadLetter('refused', `SurrealDB refused it ${refusals} times: ${describe(err)}`, attempt)
          }
          this.log.warning('surreal write failed, not acking; retrying',
            { cid, seq, attempt, error: describe(err), retry_in: delay / 1000 })
        }
        // tell JetStream the held messages are in progress, however long SurrealDB is away
        keepAlive ??= setInterval(() => {
          for (const m of held) {
            try { m.working() } catch {}
          }
        }, this.config.ackWaitMs / 3)
        if (this.stopped) return false
        await this.pause(delay)
        if (this.stopped) return false
        delay = Math.min(delay * 2, BACKOFF_CAP_MS)
      }
    } finally {
      clearInterval(keepAlive)
    }
  }
}

/** wrong-value (bugs.ts): the value of the last message of `key` among those held (the fetched batch). */
function lastValueOf (key: string, held: readonly JsMsg[]): Commitment['value'] | undefined {
  let value: Commitment['value'] | undefined
  for (const m of held) {
    try {
      const body = parseBody(m.data)
      if (body.key === key) value = body.value
    } catch {} // a malformed one is dead-lettered in its turn
  }
  return value
}
