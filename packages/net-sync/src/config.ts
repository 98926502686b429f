/**
 * Configuration from the environment only, read in this one place (docs/contract.md, "Configuration
 * (environment)"). Names and defaults are the contract's; a variable set to the empty string counts as
 * unset, as in netsync. Every error is a ConfigError naming the variable and what is allowed.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { FLAGS } from './bugs.js'

export type Env = Readonly<Record<string, string | undefined>>

/** A missing or malformed environment variable; `variable` names it, the message says what is allowed. */
export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly variable: string

  constructor (variable: string, message: string) {
    super(message)
    this.variable = variable
  }
}

/** The 64-bit integers the store holds: the bounds of the voting range. */
export const INT64_MIN = -(2n ** 63n)
export const INT64_MAX = 2n ** 63n - 1n

/** Planted bugs this implementation knows (docs/contract.md, "Planted bugs"; bugs.ts): the image's label. */
export const KNOWN_BUGS: readonly string[] = Object.keys(FLAGS)

export interface PeerAddress {
  /** the name from NETSYNC_PEERS (`agent-2`) */
  name: string
  /** the proxy multiaddr, ending in /p2p/<peer id> */
  addr: Multiaddr
  /** the peer id at the end of `addr` */
  peerId: string
}

export interface AgentConfig {
  role: 'agent'
  name: string
  identitySeed: string
  listen: Multiaddr
  peers: PeerAddress[]
  orchestrator: PeerAddress
  quorum: number
  bufferCap: number
  journalDir: string
  intentTimeoutMs: number
  commitTimeoutMs: number
  replayIntervalMs: number
  valueMin: bigint
  valueMax: bigint
  httpPort: number
  telemetryIntervalMs: number
  bugs: ReadonlySet<string>
}

export interface StreamConfig {
  name: string
  subjects: string[]
  maxMsgs: number
  maxBytes: number
  maxAgeS: number
  duplicateWindowS: number
  replicas: number
}

export interface OrchestratorConfig {
  role: 'orchestrator'
  name: string
  identitySeed: string
  listen: Multiaddr
  natsServers: string[]
  stream: StreamConfig
  publishTimeoutMs: number
  httpPort: number
  telemetryIntervalMs: number
  bugs: ReadonlySet<string>
}

export interface ProjectorConfig {
  role: 'projector'
  name: string
  natsServers: string[]
  stream: string
  consumer: string
  ackWaitMs: number
  surrealUrl: string
  surrealUser: string
  surrealPass: string
  surrealNs: string
  surrealDb: string
  /** NETSYNC_CHANGEFEED_RETENTION: the projected table's changefeed (`DEFINE TABLE IF NOT EXISTS ... CHANGEFEED <it>`) */
  changefeedRetention: string
  httpPort: number
  bugs: ReadonlySet<string>
}

export type Config = AgentConfig | OrchestratorConfig | ProjectorConfig

function raw (env: Env, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value === '' ? undefined : value
}

function str (env: Env, name: string, fallback: string): string {
  return raw(env, name) ?? fallback
}

function required (env: Env, name: string, what: string): string {
  const value = raw(env, name)
  if (value === undefined) {
    throw new ConfigError(name, `${name} is required: ${what}`)
  }
  return value
}

const INTEGER = /^\s*[+-]?\d+\s*$/
const NUMBER = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/

function bigIntOf (env: Env, name: string, fallback: bigint): bigint {
  const value = raw(env, name)
  if (value === undefined) return fallback
  if (!INTEGER.test(value)) {
    throw new ConfigError(name, `${name}=${JSON.stringify(value)} is not an integer`)
  }
  return BigInt(value.trim())
}

/** An integer within [min, max] (`allowed` says so in words when the bounds alone do not). */
function int (env: Env, name: string, fallback: number, min: number, max: number, allowed?: string): number {
  const value = Number(bigIntOf(env, name, BigInt(fallback)))
  if (!(value >= min && value <= max)) {
    throw new ConfigError(name, `${name}=${env[name] ?? ''} must be ${allowed ?? `an integer from ${min} to ${max}`}`)
  }
  return value
}

function num (env: Env, name: string, fallback: number, min: number, allowed: string): number {
  const value = raw(env, name)
  if (value === undefined) return fallback
  if (!NUMBER.test(value)) {
    throw new ConfigError(name, `${name}=${JSON.stringify(value)} is not a number`)
  }
  const n = Number(value)
  if (!(n >= min) || !Number.isFinite(n)) {
    throw new ConfigError(name, `${name}=${value} must be ${allowed}`)
  }
  return n
}

const MAX_MS = 24 * 3600 * 1000

function parseAddr (name: string, value: string, what: string): Multiaddr {
  try {
    return multiaddr(value)
  } catch (err) {
    throw new ConfigError(name, `${name}: ${JSON.stringify(value)} is not a multiaddr (${(err as Error).message}); expected ${what}`)
  }
}

/** A multiaddr that ends in /p2p/<peer id>, as NETSYNC_PEERS and NETSYNC_ORCHESTRATOR require. */
function peerAddr (variable: string, name: string, value: string): PeerAddress {
  const what = 'a multiaddr ending in /p2p/<peer id>, such as /dns4/toxiproxy/tcp/21002/p2p/12D3KooW...'
  const addr = parseAddr(variable, value, what)
  const last = addr.getComponents().at(-1)
  if (last?.name !== 'p2p' || last.value === undefined) {
    throw new ConfigError(variable, `${variable}: ${JSON.stringify(value)} must be ${what}`)
  }
  try {
    peerIdFromString(last.value)
  } catch {
    throw new ConfigError(variable, `${variable}: ${JSON.stringify(last.value)} in ${JSON.stringify(value)} is not a peer id`)
  }
  return { name, addr, peerId: last.value }
}

/** `agent-2=/dns4/tp/tcp/21002/p2p/12D3..,agent-3=...`: names unique, each address ending in /p2p/<peer id>. */
export function parsePeers (value: string, variable = 'NETSYNC_PEERS'): PeerAddress[] {
  const peers: PeerAddress[] = []
  for (const item of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = item.indexOf('=')
    if (eq <= 0) {
      throw new ConfigError(variable, `${variable} entry ${JSON.stringify(item)} is not name=multiaddr ending in /p2p/<peer id>`)
    }
    const name = item.slice(0, eq).trim()
    if (peers.some((p) => p.name === name)) {
      throw new ConfigError(variable, `${variable} names ${JSON.stringify(name)} twice; each peer once`)
    }
    peers.push(peerAddr(variable, name, item.slice(eq + 1).trim()))
  }
  return peers
}

/** NETSYNC_NATS_URL: one server, or every server of a cluster, comma-separated. */
export function parseNatsServers (env: Env, variable = 'NETSYNC_NATS_URL'): string[] {
  const what = 'one NATS URL or several comma-separated (nats://toxiproxy:23011,nats://toxiproxy:23012)'
  const servers = required(env, variable, what).split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (servers.length === 0) {
    throw new ConfigError(variable, `${variable} names no server: ${what}`)
  }
  return servers
}

/** NETSYNC_BUGGIFY: planted bugs of this implementation; an unknown name stops the start, naming the known ones. */
export function parseBugs (env: Env): ReadonlySet<string> {
  const names = (raw(env, 'NETSYNC_BUGGIFY') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')
  for (const bug of names) {
    if (!KNOWN_BUGS.includes(bug)) {
      const known = KNOWN_BUGS.join(', ')
      throw new ConfigError('NETSYNC_BUGGIFY', `NETSYNC_BUGGIFY: unknown planted bug ${JSON.stringify(bug)}; known: ${known}`)
    }
  }
  return new Set(names)
}

function listen (env: Env): Multiaddr {
  return parseAddr('NETSYNC_LISTEN', str(env, 'NETSYNC_LISTEN', '/ip4/0.0.0.0/tcp/4001'), 'a listen multiaddr such as /ip4/0.0.0.0/tcp/4001')
}

function httpPort (env: Env): number {
  return int(env, 'NETSYNC_HTTP_PORT', 8080, 1, 65535, 'a TCP port, 1 to 65535')
}

function millis (env: Env, name: string, fallback: number): number {
  return int(env, name, fallback, 1, MAX_MS, `a positive number of milliseconds, at most ${MAX_MS} (a day)`)
}

export function agentConfig (env: Env = process.env): AgentConfig {
  const name = str(env, 'NETSYNC_NAME', 'agent')
  const peers = parsePeers(raw(env, 'NETSYNC_PEERS') ?? '')
  const orchestrator = peerAddr(
    'NETSYNC_ORCHESTRATOR', 'orchestrator',
    required(env, 'NETSYNC_ORCHESTRATOR', "the orchestrator's multiaddr ending in /p2p/<peer id>")
  )
  const agents = peers.length + 1
  const quorum = int(env, 'NETSYNC_QUORUM', Math.floor(agents / 2) + 1, 1, agents,
    `between 1 and ${agents} (the agents: NETSYNC_PEERS and this one)`)
  const values: Record<string, bigint> = {}
  for (const [variable, fallback] of [['NETSYNC_VALUE_MIN', -1_000_000n], ['NETSYNC_VALUE_MAX', 1_000_000n]] as const) {
    const value = bigIntOf(env, variable, fallback)
    if (value < INT64_MIN || value > INT64_MAX) {
      throw new ConfigError(variable, `${variable}=${value} must be a 64-bit integer (the store's), ${INT64_MIN} to ${INT64_MAX}`)
    }
    values[variable] = value
  }
  const valueMin = values.NETSYNC_VALUE_MIN ?? -1_000_000n
  const valueMax = values.NETSYNC_VALUE_MAX ?? 1_000_000n
  if (valueMin > valueMax) {
    throw new ConfigError('NETSYNC_VALUE_MAX', `NETSYNC_VALUE_MAX=${valueMax} must not be below NETSYNC_VALUE_MIN=${valueMin}`)
  }
  return {
    role: 'agent',
    name,
    identitySeed: str(env, 'NETSYNC_IDENTITY_SEED', name),
    listen: listen(env),
    peers,
    orchestrator,
    quorum,
    bufferCap: int(env, 'NETSYNC_BUFFER_CAP', 256, 1, 1_000_000, 'an integer from 1 to 1000000 (intents)'),
    journalDir: str(env, 'NETSYNC_JOURNAL_DIR', '/var/lib/netsync'),
    intentTimeoutMs: millis(env, 'NETSYNC_INTENT_TIMEOUT_MS', 80),
    commitTimeoutMs: millis(env, 'NETSYNC_COMMIT_TIMEOUT_MS', 400),
    replayIntervalMs: millis(env, 'NETSYNC_REPLAY_INTERVAL_MS', 200),
    valueMin,
    valueMax,
    httpPort: httpPort(env),
    telemetryIntervalMs: millis(env, 'NETSYNC_TELEMETRY_INTERVAL_MS', 1000),
    bugs: parseBugs(env)
  }
}

export function streamConfig (env: Env = process.env): StreamConfig {
  return {
    name: str(env, 'NETSYNC_STREAM', 'SENTIMENT'),
    subjects: ['root.solar.command.>'],
    maxMsgs: int(env, 'NETSYNC_STREAM_MAX_MSGS', -1, -1, Number.MAX_SAFE_INTEGER, 'an integer, -1 or 0 for no limit'),
    maxBytes: int(env, 'NETSYNC_STREAM_MAX_BYTES', -1, -1, Number.MAX_SAFE_INTEGER, 'an integer, -1 or 0 for no limit'),
    maxAgeS: num(env, 'NETSYNC_STREAM_MAX_AGE_S', 0, 0, 'a number of seconds, 0 for no limit'),
    duplicateWindowS: num(env, 'NETSYNC_DUPLICATE_WINDOW_S', 120, 0, 'a number of seconds, 0 or more'),
    replicas: int(env, 'NETSYNC_STREAM_REPLICAS', 1, 1, 5, 'an integer from 1 to 5 (at most the NATS servers)')
  }
}

export function orchestratorConfig (env: Env = process.env): OrchestratorConfig {
  const name = str(env, 'NETSYNC_NAME', 'orchestrator')
  return {
    role: 'orchestrator',
    name,
    identitySeed: str(env, 'NETSYNC_IDENTITY_SEED', name),
    listen: listen(env),
    natsServers: parseNatsServers(env),
    stream: streamConfig(env),
    publishTimeoutMs: millis(env, 'NETSYNC_PUBLISH_TIMEOUT_MS', 300),
    httpPort: httpPort(env),
    telemetryIntervalMs: millis(env, 'NETSYNC_TELEMETRY_INTERVAL_MS', 1000),
    bugs: parseBugs(env)
  }
}

/** A SurrealDB duration above zero, as `CHANGEFEED <duration>` takes it (netsync's changefeed.DURATION). */
const DURATION = /^(?:[0-9]+(?:ns|us|µs|ms|s|m|h|d|w|y))+$/

export function changefeedRetention (env: Env = process.env): string {
  const name = 'NETSYNC_CHANGEFEED_RETENTION'
  const value = str(env, name, '1h')
  if (!DURATION.test(value) || !/[1-9]/.test(value)) {
    throw new ConfigError(name, `${name}=${JSON.stringify(value)} is not a SurrealDB duration above zero (30s, 10m, 1h)`)
  }
  return value
}

export function projectorConfig (env: Env = process.env): ProjectorConfig {
  return {
    role: 'projector',
    name: str(env, 'NETSYNC_NAME', 'projector'),
    natsServers: parseNatsServers(env),
    stream: str(env, 'NETSYNC_STREAM', 'SENTIMENT'),
    consumer: str(env, 'NETSYNC_CONSUMER', 'projector'),
    ackWaitMs: millis(env, 'NETSYNC_ACK_WAIT_MS', 30000),
    surrealUrl: required(env, 'NETSYNC_SURREAL_URL', 'ws://host:port/rpc (a proxy address)'),
    surrealUser: str(env, 'NETSYNC_SURREAL_USER', 'root'),
    surrealPass: str(env, 'NETSYNC_SURREAL_PASS', 'root'),
    surrealNs: str(env, 'NETSYNC_SURREAL_NS', 'solar'),
    surrealDb: str(env, 'NETSYNC_SURREAL_DB', 'netsync'),
    changefeedRetention: changefeedRetention(env),
    httpPort: httpPort(env),
    bugs: parseBugs(env)
  }
}

/** The configuration of `role` (the command's argument), read from `env`. */
export function configFromEnv (role: string, env: Env = process.env): Config {
  switch (role) {
    case 'agent': return agentConfig(env)
    case 'orchestrator': return orchestratorConfig(env)
    case 'projector': return projectorConfig(env)
    default: throw new ConfigError('role', `unknown role ${JSON.stringify(role)}; one of agent, orchestrator, projector`)
  }
}
