#!/usr/bin/env node
/**
 * `net-sync ROLE`: the image's entrypoint, one role per process (docs/contract.md, "Roles and images"),
 * configured only by the environment. Each role lives in src/roles/<role>.ts and exports
 * `start(env, log)`, which resolves once the role serves and returns its stop. SIGTERM and SIGINT stop
 * it and exit 0; a stop that has not finished within STOP_GRACE_MS is logged and exits 1 (a process that
 * never exits on SIGTERM would hang whoever waits for it); a ConfigError exits 2 naming the variable and
 * what is allowed.
 */
import { ConfigError, type Env } from './config.js'
import { Log } from './log.js'

/** A started role: `stop` closes what it holds (HTTP, libp2p, NATS, SurrealDB) and resolves. */
export interface RoleHandle { stop: () => Promise<void> }
export type StartRole = (env: Env, log: Log) => Promise<RoleHandle>

/** How long a stop may take before the process gives up on it: under Docker's 10 s before SIGKILL. */
export const STOP_GRACE_MS = 8_000

/** `stop()` within `graceMs`: true when it finished (or failed) in time, false when it did not; a failing
 * stop is logged, never thrown, so the process still exits. */
export async function stopWithin (stop: () => Promise<void>, graceMs: number, log: Log): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false) }, graceMs) })
  const done = stop().then(() => true, (err: unknown) => {
    log.error('stop failed', { error: err instanceof Error ? err.message : String(err) })
    return true
  })
  try {
    const inTime = await Promise.race([done, late])
    if (!inTime) log.error('stop timed out', { grace_ms: graceMs })
    return inTime
  } finally {
    clearTimeout(timer)
  }
}

export const ROLES = ['agent', 'orchestrator', 'projector'] as const
export type Role = typeof ROLES[number]

function isRole (name: string | undefined): name is Role {
  return (ROLES as readonly string[]).includes(name ?? '')
}

export async function main (argv: readonly string[], env: Env = process.env): Promise<number> {
  const role = argv[0]
  if (argv.length !== 1 || !isRole(role)) {
    process.stderr.write(`usage: net-sync {${ROLES.join('|')}}  (configured by environment)\n`)
    return 2
  }
  const log = new Log(env.NETSYNC_NAME !== undefined && env.NETSYNC_NAME !== '' ? env.NETSYNC_NAME : role)
  const module = await import(`./roles/${role}.js`) as { start: StartRole }
  let handle: RoleHandle
  try {
    handle = await module.start(env, log)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`net-sync ${role}: ${err.variable}: ${err.message}\n`)
      return 2
    }
    throw err
  }
  return await new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      log.info('stopping', { signal })
      void stopWithin(async () => { await handle.stop() }, STOP_GRACE_MS, log).then((inTime) => { resolve(inTime ? 0 : 1) })
    }
    process.once('SIGTERM', () => { stop('SIGTERM') })
    process.once('SIGINT', () => { stop('SIGINT') })
  })
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main(process.argv.slice(2)).then((code) => { process.exit(code) }, (err: unknown) => {
    process.stderr.write(`net-sync: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  })
}
