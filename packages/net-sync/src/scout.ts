/**
 * The orchestrator's telemetry scout (docs/contract.md, "Telemetry"): hears the agents' peer-health on
 * the floodsub topic and, once per NETSYNC_TELEMETRY_INTERVAL_MS, hands one summary of the window to
 * `emit` (NATS `root.solar.telemetry.peer-health`). A window in which nothing was heard is not
 * published; one `emit` cannot take is dropped, not queued. Hear netsync's agents with telemetryPubsub()
 * (telemetry.ts): stock js-libp2p floodsub refuses every message they sign.
 */
import type { FloodSub } from '@libp2p/floodsub'
import { TELEMETRY_TOPIC } from './telemetry.js'
import { fromJson, type JsonObject, type JsonValue } from './wire.js'

/** What a window says of one agent. */
export interface AgentSummary {
  samples: number
  peers_reachable_min: number | bigint | null
  buffer_depth_max: number | bigint
  nats_reachable_last: boolean | null
}

/** One window's summary, its ends in Unix seconds. */
export interface Summary {
  window_start: number
  window_end: number
  messages: number
  agents: Record<string, AgentSummary>
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true })

/** A peer's health sample, or undefined for anything else: any peer can publish on the topic, so no
 * message may take the scout down. */
export function decodeSample (data: Uint8Array): JsonObject | undefined {
  try {
    const sample = fromJson(utf8Strict.decode(data))
    return sample !== null && typeof sample === 'object' && !Array.isArray(sample) ? sample : undefined
  } catch { // not UTF-8, not JSON, nested too deep
    return undefined
  }
}

function isInt (v: JsonValue | undefined): v is number | bigint {
  return typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))
}

/** Python's bool(), as netsync reads `nats_reachable`. */
function truthy (v: JsonValue | undefined): boolean {
  if (Array.isArray(v)) return v.length > 0
  if (v !== null && typeof v === 'object') return Object.keys(v).length > 0
  return Boolean(v)
}

/** The samples heard since `start` (Unix s). */
export class TelemetryWindow {
  messages = 0
  readonly agents: Record<string, AgentSummary> = {}

  constructor (readonly start = Date.now() / 1000) {}

  add (sample: JsonObject): void {
    const agent = sample.agent
    const name = typeof agent === 'string' ? agent : agent === undefined ? '?' : String(agent)
    this.messages++
    const a = this.agents[name] ??= { samples: 0, peers_reachable_min: null, buffer_depth_max: 0, nats_reachable_last: null }
    a.samples++
    const peers = sample.peers_reachable
    if (isInt(peers)) a.peers_reachable_min = a.peers_reachable_min === null || peers < a.peers_reachable_min ? peers : a.peers_reachable_min
    const depth = sample.buffer_depth
    if (isInt(depth) && depth > a.buffer_depth_max) a.buffer_depth_max = depth
    if ('nats_reachable' in sample) a.nats_reachable_last = truthy(sample.nats_reachable)
  }

  summary (end = Date.now() / 1000): Summary {
    return { window_start: this.start, window_end: end, messages: this.messages, agents: this.agents }
  }
}

export class Scout {
  private window = new TelemetryWindow()
  private timer: NodeJS.Timeout | undefined
  private pubsub: FloodSub | undefined
  private readonly onMessage = (evt: CustomEvent<{ topic: string, data: Uint8Array }>): void => {
    if (evt.detail.topic !== TELEMETRY_TOPIC) return
    const sample = decodeSample(evt.detail.data)
    if (sample !== undefined) this.window.add(sample)
  }

  /** `emit` publishes a summary; a throw or `false` drops it. */
  constructor (readonly intervalMs: number, private readonly emit: (summary: Summary) => boolean | Promise<boolean>) {}

  /** Hear the topic on `pubsub` and summarise once per interval. */
  start (pubsub: FloodSub): void {
    this.pubsub = pubsub
    pubsub.addEventListener('message', this.onMessage)
    pubsub.subscribe(TELEMETRY_TOPIC)
    this.timer = setInterval(() => { void this.flush() }, this.intervalMs)
  }

  /** Close the window now; its summary (when anything was heard) goes to `emit`. */
  async flush (): Promise<Summary | undefined> {
    const window = this.window
    this.window = new TelemetryWindow()
    if (window.messages === 0) return undefined
    const summary = window.summary()
    try {
      await this.emit(summary)
    } catch {} // NATS down: this window is dropped, not queued
    return summary
  }

  stop (): void {
    clearInterval(this.timer)
    this.pubsub?.removeEventListener('message', this.onMessage)
    try { this.pubsub?.unsubscribe(TELEMETRY_TOPIC) } catch {} // a pubsub already stopped
  }
}
