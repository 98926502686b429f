/**
 * The orchestrator's JetStream publisher (docs/contract.md, "Commitment" and "Health"): one NATS
 * connection to any of NETSYNC_NATS_URL's servers, failing over to the others and reconnecting for ever;
 * the stream found or made; each decision published once, looked up first when it is a replay past the
 * duplicate window (lookup.ts). `ready` is the contract's `nats` flag, kept without asking NATS.
 *
 * nats.js pitfalls met here: a publish or request made while disconnected is queued until its timeout
 * rather than refused, so the connection's state is tracked from its status events and a publish is
 * refused at once while it is down; a core publish (the scout's summary) would be queued the same way and
 * sent after the outage, so it is dropped instead. Servers a cluster gossips are ignored: only the given
 * (proxy) addresses are dialled.
 */
import { connect, headers, type NatsConnection } from '@nats-io/transport-node'
import {
  DiscardPolicy, jetstream, jetstreamManager, StorageType, type JetStreamClient, type JetStreamManager, type StreamInfo
} from '@nats-io/jetstream'
import type { StreamConfig } from './config.js'
import type { Log } from './log.js'
import { monotonicNow } from './clock.js'
import { toJson, type Decision } from './wire.js'
import {
  CID_HEADER, COMMAND_SUBJECT, duplicateWindowS, findInStream, firstAttempt, landsAt, LookupStalledError, pastWindow
} from './lookup.js'

/** NATS cannot take the decision now (down, no stream, no PubAck in time, a lookup that could not tell). */
export class NatsUnavailableError extends Error {
  override name = 'NatsUnavailableError'
}

export interface PublisherOptions {
  /** NETSYNC_NATS_URL's servers */
  servers: string[]
  /** the stream made when missing (config.ts streamConfig) */
  stream: StreamConfig
  /** NETSYNC_PUBLISH_TIMEOUT_MS: the wait for a PubAck */
  publishTimeoutMs: number
  log: Log
  /** called when a replay is looked up in the stream (a metric) */
  onLookup?: () => void
  /** planted bugs (bugs.ts) of the orchestrator */
  bugs?: ReadonlySet<string>
}

export interface Committed { seq: number, duplicate: boolean }

/** JetStream API calls other than the publish (stream info, consumers) wait this long. */
const API_TIMEOUT_MS = 2000
/** reconnect-gives-up: nats.js gives up after this many refused attempts, about 15 s as nats-py's 60 take: nats.js
 * waits 250 ms plus up to 100 ms of jitter between them (60 took 18 s, nats-long-outage's whole refusal) */
const RECONNECT_BOUND = 50
// nats.js reports a publish nothing answered (no stream takes the subject) as JetStreamNotEnabled
const STREAM_GONE = /no responders|stream not found|no stream|jetstream is not enabled/i

function sleep (ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    function done (): void { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
  })
}

export class Publisher {
  private nc: NatsConnection | undefined
  private connected = false
  // Set once the stream was found or made (or took a publish), cleared when the connection drops or a
  // publish finds the stream gone: /healthz reads it and asks NATS nothing.
  private streamReady = false
  private confirming = false
  private readonly stopping = new AbortController()

  private readonly bugs: ReadonlySet<string>

  constructor (readonly options: PublisherOptions) {
    this.bugs = options.bugs ?? new Set()
  }

  /** Connected to NATS with the stream in place, as last seen (docs/contract.md, "Health"). */
  get ready (): boolean {
    return this.connected && this.streamReady
  }

  /** Connects (retrying from 0.25 s, doubling to 2 s, until it works or close()), then finds or makes the stream. */
  async connect (): Promise<void> {
    const { log, servers } = this.options
    const signal = this.stopping.signal
    let delay = 250
    while (!signal.aborted) {
      try {
        if (this.nc === undefined) {
          const nc = await connect({
            servers,
            reconnect: true,
            // an outage of any length ends with this orchestrator back on NATS
            maxReconnectAttempts: this.bugs.has('reconnect-gives-up') ? RECONNECT_BOUND : -1,
            reconnectTimeWait: 250,
            timeout: 1000,
            pingInterval: 2000,
            maxPingOut: 2,
            ignoreClusterUpdates: true,
            name: 'net-sync orchestrator'
          })
          if (signal.aborted) { await nc.close(); return }
          this.nc = nc
          this.connected = true
          void this.watch(nc)
        }
        await this.ensureStream()
        log.info('stream ready', { stream: this.options.stream.name })
        return
      } catch (err) { // libp2p keeps serving meanwhile: decisions are answered nats-unavailable
        log.warning('nats not ready', { error: `${(err as Error).name}: ${(err as Error).message}` })
        await sleep(delay, signal)
        delay = Math.min(delay * 2, 2000)
      }
    }
  }

  private async watch (nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.connected = false
          this.streamReady = false
          this.options.log.warning('nats disconnected', { server: s.server })
          break
        case 'reconnect':
          this.connected = true
          this.streamReady = false // the server may have come back without the stream
          this.options.log.info('nats reconnected', { server: s.server })
          void this.confirm()
          break
        case 'error':
          this.options.log.warning('nats error', { error: String(s.error) })
          break
        case 'close':
          this.connected = false
          this.streamReady = false
          break
        default:
      }
    }
  }

  /** After a reconnect, find (or make) the stream once so /healthz says so before any publish would;
   * retried while connected, as JetStream may still be starting. */
  private async confirm (): Promise<void> {
    if (this.confirming) return
    this.confirming = true
    try {
      let delay = 250
      while (this.connected && !this.streamReady && !this.stopping.signal.aborted) {
        try {
          await this.ensureStream()
        } catch (err) {
          this.options.log.warning('stream not confirmed after a reconnect', { error: `${(err as Error).name}: ${(err as Error).message}` })
          await sleep(delay, this.stopping.signal)
          delay = Math.min(delay * 2, 2000)
        }
      }
    } finally {
      this.confirming = false
    }
  }

  private client (): JetStreamClient {
    if (this.nc === undefined || !this.connected) throw new NatsUnavailableError('not connected to NATS')
    return jetstream(this.nc, { timeout: API_TIMEOUT_MS })
  }

  private async manager (): Promise<JetStreamManager> {
    if (this.nc === undefined || !this.connected) throw new NatsUnavailableError('not connected to NATS')
    return await jetstreamManager(this.nc, { timeout: API_TIMEOUT_MS, checkAPI: false })
  }

  /**
   * The stream's info, made with the configured subjects, file storage, limits, duplicate window and
   * replicas when missing. An existing stream is used as it is: its operator's limits and window stand.
   */
  async ensureStream (): Promise<StreamInfo> {
    const jsm = await this.manager()
    const s = this.options.stream
    let info: StreamInfo
    try {
      info = await jsm.streams.info(s.name)
    } catch (err) {
      if (!/stream not found/i.test((err as Error).message)) throw err
      info = await jsm.streams.add({
        name: s.name,
        subjects: s.subjects,
        storage: StorageType.File,
        max_msgs: s.maxMsgs,
        max_bytes: s.maxBytes,
        max_age: Math.round(s.maxAgeS * 1e9),
        duplicate_window: Math.round(s.duplicateWindowS * 1e9),
        discard: DiscardPolicy.Old,
        num_replicas: s.replicas
      })
    }
    const actual = duplicateWindowS(info)
    if (Math.abs(actual - s.duplicateWindowS) > 0.001) {
      this.options.log.warning("the stream's duplicate window is not the configured one; using the stream's",
        { stream: s.name, duplicate_window_s: actual, configured_s: s.duplicateWindowS })
    }
    this.streamReady = true
    return info
  }

  /**
   * Publishes `decision` with `Nats-Msg-Id` and `Correlation-Id` set to its cid and answers its stream seq.
   * A replay (`replay`) whose first attempt would be older than 90 % of the stream's window when this
   * publish lands is looked up first, and answered `duplicate` with the seq found. `receivedMono` is when
   * the decision arrived (clock.ts monotonicNow()), from which its wait here is counted. Throws
   * NatsUnavailableError.
   */
  async commit (decision: Decision, replay: boolean, receivedMono = monotonicNow()): Promise<Committed> {
    const { log, publishTimeoutMs, stream } = this.options
    try {
      if (!this.streamReady) await this.ensureStream()
      const js = this.client()
      if (replay && !this.bugs.has('no-window-lookup')) {
        // The window in force now, read from the stream: an operator may have changed it since this started.
        const asked = monotonicNow()
        const jsm = await this.manager()
        const info = await jsm.streams.info(stream.name)
        // window-age-at-send: neither the wait for NATS nor the publish's flight counted
        const late = this.bugs.has('window-age-at-send')
        const first = firstAttempt(decision, late ? 0 : monotonicNow() - receivedMono, undefined, this.bugs.has('trust-agent-clock'))
        const lands = late ? Date.now() / 1000 : landsAt(asked, publishTimeoutMs)
        if (pastWindow(first, lands, duplicateWindowS(info))) {
          this.options.onLookup?.()
          log.info('window lookup', { cid: decision.cid, attempt: decision.attempt })
          const seq = await findInStream(js, jsm, info, decision.cid, first ?? 0, this.bugs.has('stall-is-absent')) // unknown: all of it
          log.info('window lookup done', { cid: decision.cid, found_seq: seq ?? null })
          if (seq !== undefined) return { seq, duplicate: true }
        }
      }
      const h = headers()
      h.set(CID_HEADER, decision.cid)
      const body = { cid: decision.cid, key: decision.key, value: decision.value, proposer: decision.proposer, decided_at: decision.decided_at }
      const ack = await js.publish(COMMAND_SUBJECT, toJson(body), {
        ...(this.bugs.has('no-dedup-header') ? {} : { msgID: decision.cid }), // buggify: no Nats-Msg-Id
        headers: h,
        timeout: publishTimeoutMs,
        expect: { streamName: stream.name }
      })
      this.streamReady = true
      return { seq: ack.seq, duplicate: ack.duplicate }
    } catch (err) {
      if (err instanceof NatsUnavailableError) throw err
      const message = `${(err as Error).name}: ${(err as Error).message}`
      if (!(err instanceof LookupStalledError) && STREAM_GONE.test(message)) {
        this.streamReady = false // found or made again by the next publish; /healthz says so meanwhile
      }
      throw new NatsUnavailableError(message)
    }
  }

  /** Publishes `value` as JSON on core NATS `subject`; dropped, not queued, while disconnected. */
  publishJson (subject: string, value: object): boolean {
    if (this.nc === undefined || !this.connected) return false
    this.nc.publish(subject, toJson(value))
    return true
  }

  async close (): Promise<void> {
    this.stopping.abort()
    this.connected = false
    this.streamReady = false
    await this.nc?.close().catch(() => {})
  }
}
