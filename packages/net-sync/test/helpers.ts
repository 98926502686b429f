/** What the tests share: the checkout's Python, and netsync's own agent as a process (the reference). */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdForSeed, type Peer } from '../src/index.js'

/** The project's checkout (packages/net-sync/dist/test -> four levels up). */
export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))
/** The checkout's venv, where netsync and py-libp2p are installed (make venv). */
export const PYTHON = `${ROOT}.venv/bin/python`

/** Run `code` with netsync importable; `input` arrives as JSON in sys.argv[1]; stdout is returned. */
export function python (code: string, input: unknown = null): string {
  return execFileSync(PYTHON, ['-c', code, JSON.stringify(input)], { cwd: ROOT, encoding: 'utf8' })
}

/** Ports this test process has handed out: the kernel may give a port closed a moment ago to the next
 * `listen(0)`, and two processes told the same port race for it (one exits with EADDRINUSE). */
const handedOut = new Set<number>()

/** A TCP port nobody listens on now, and one this test process has not handed out before. */
export async function freePort (): Promise<number> {
  for (;;) {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    await new Promise<void>((resolve) => server.close(() => resolve()))
    if (!handedOut.has(port)) {
      handedOut.add(port)
      return port
    }
  }
}

/** A child process whose output is kept for the error message, and a stop that waits for its exit. */
export interface Child { proc: ChildProcess, log: string[], stop: () => Promise<void> }

/** How long `stop` waits after its signal before SIGKILL: a child that ignores SIGTERM must not hang the
 * file's `after` hook (and with it the whole suite). */
export const KILL_AFTER_MS = 10_000

export function child (command: string, args: string[], options: SpawnOptions,
  signal: NodeJS.Signals, cleanup: () => void = () => {}): Child {
  const log: string[] = []
  const proc: ChildProcess = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
  proc.stdout?.on('data', (d: Buffer) => log.push(d.toString()))
  proc.stderr?.on('data', (d: Buffer) => log.push(d.toString()))
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill(signal)
      const timer = setTimeout(() => {
        log.push(`(no exit ${KILL_AFTER_MS} ms after ${signal}: SIGKILL)\n`)
        proc.kill('SIGKILL')
      }, KILL_AFTER_MS)
      await exited
      clearTimeout(timer)
    }
    cleanup()
  }
  return { proc, log, stop }
}

/** Polls `probe` every `everyMs` until it holds; stops the child and throws with its log when the child
 * exits first or `timeoutMs` passes. */
export async function untilReady (what: string, c: Child, probe: () => Promise<boolean>,
  timeoutMs: number, everyMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await probe()) return
    } catch {}
    if (c.proc.exitCode !== null || Date.now() > deadline) {
      await c.stop()
      throw new Error(`${what} not ready (exit ${c.proc.exitCode}):\n${c.log.join('')}`)
    }
    await sleep(everyMs)
  }
}

/** How `until` polls: its deadline, its pace, when a value is the one awaited (default: any value but
 * `false` and `undefined`), and what to add to its error (a process's last log lines). */
export interface UntilOptions<T> { timeoutMs?: number, everyMs?: number, ok?: (v: T) => boolean, context?: () => string }

/** Polls `probe` until its value is the one awaited and returns it; a probe that throws is polled again.
 * Past the deadline, throws naming what was awaited and the last value or error seen. */
export async function until<T> (what: string, probe: () => Promise<T | false | undefined>,
  { timeoutMs = 20_000, everyMs = 100, ok = (v) => v !== false && v !== undefined, context }: UntilOptions<T | false | undefined> = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let seen: unknown
  for (;;) {
    try {
      const v = await probe()
      if (ok(v)) return v as T
      seen = v
    } catch (err) { seen = err }
    if (Date.now() > deadline) {
      const last = seen instanceof Error ? String(seen) : JSON.stringify(seen)
      throw new Error(`awaited ${what} for ${timeoutMs} ms; last seen: ${last}${context !== undefined ? `\n${context()}` : ''}`)
    }
    await sleep(everyMs)
  }
}

export interface Health { name: string, peer_id: string, peers_connected: string[], orchestrator_connected: boolean, buffer_depth: number }

export interface NetsyncAgent {
  name: string
  /** its libp2p address, ending in /p2p/<peer id> */
  peer: Peer & { name: string }
  httpPort: number
  log: string[]
  health: () => Promise<Health>
  stop: () => Promise<void>
}

/**
 * netsync's own agent, `python -m netsync agent` from the checkout's venv, on loopback ports of its own
 * (NETSYNC_LISTEN, NETSYNC_HTTP_PORT, a fresh NETSYNC_JOURNAL_DIR); `env` adds to them. Resolves once its
 * /healthz answers and `ready` holds.
 */
export async function startNetsyncAgent (name: string, env: Record<string, string>,
  ready: (h: Health) => boolean = () => true): Promise<NetsyncAgent> {
  return await startNetsync('agent', name, env, ready)
}

/** netsync's `role` as a process, as startNetsyncAgent; an orchestrator's /healthz has `nats`. */
export async function startNetsync<H = Health> (role: 'agent' | 'orchestrator', name: string, env: Record<string, string>,
  ready: (h: H) => boolean = () => true): Promise<NetsyncAgent> {
  const p2pPort = await freePort()
  const httpPort = await freePort()
  const journal = mkdtempSync(join(tmpdir(), `net-sync-${name}-`))
  const c = child(PYTHON, ['-m', 'netsync', role], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      NETSYNC_NAME: name,
      NETSYNC_LISTEN: `/ip4/127.0.0.1/tcp/${p2pPort}`,
      NETSYNC_HTTP_PORT: String(httpPort),
      NETSYNC_JOURNAL_DIR: journal,
      ...env
    }
  }, 'SIGTERM', () => rmSync(journal, { recursive: true, force: true }))
  const health = async (): Promise<Health> => await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json() as Health
  const agent: NetsyncAgent = {
    name,
    peer: { name, addr: multiaddr(`/ip4/127.0.0.1/tcp/${p2pPort}/p2p/${(await peerIdForSeed(env.NETSYNC_IDENTITY_SEED ?? name)).toString()}`) },
    httpPort,
    log: c.log,
    health,
    stop: c.stop
  }
  await untilReady(`netsync ${name}`, c, async () => ready(await health() as unknown as H), 60_000, 200)
  return agent
}

export interface NatsServer {
  url: string
  stop: () => Promise<void>
}

/**
 * nats-server with JetStream as a process, on loopback ports of its own: the project's build of it
 * (harness.images, the binary `make setup` caches; built if missing), as tests/integration runs it;
 * `port` to start a fresh one where a stopped one was.
 */
export async function startNatsServer (port?: number): Promise<NatsServer> {
  const binary = python('from harness.images import Images\nprint(Images("offline").binary("nats-server"))').trim()
  port ??= await freePort()
  const monitor = await freePort()
  const store = mkdtempSync(join(tmpdir(), 'net-sync-nats-'))
  const c = child(binary, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store, '-m', String(monitor)], {},
    'SIGKILL', () => rmSync(store, { recursive: true, force: true }))
  await untilReady('nats-server', c, async () => (await fetch(`http://127.0.0.1:${monitor}/healthz`)).status === 200,
    30_000, 100)
  return { url: `nats://127.0.0.1:${port}`, stop: c.stop }
}

export interface SurrealServer {
  url: string
  stop: () => Promise<void>
}

/** SurrealDB (the project's cached build, harness.images) as a process on a loopback port, in memory;
 * `port` to start it again where a stopped one was. */
export async function startSurreal (port?: number): Promise<SurrealServer> {
  const binary = python('from harness.images import Images\nprint(Images("offline").binary("surreal"))').trim()
  port ??= await freePort()
  const c = child(binary, ['start', '--user', 'root', '--pass', 'root', '--bind', `127.0.0.1:${port}`, 'memory'], {},
    'SIGKILL')
  await untilReady('surreal', c, async () => (await fetch(`http://127.0.0.1:${port}/health`)).status === 200,
    30_000, 100)
  return { url: `ws://127.0.0.1:${port}/rpc`, stop: c.stop }
}
