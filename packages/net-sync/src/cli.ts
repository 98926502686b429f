#!/usr/bin/env node
/**
 * `net-sync ROLE`: the image's entrypoint, one role per process (docs/contract.md, "Roles and images"),
 * configured only by the environment. Each role lives in src/roles/<role>.ts and exports
 * `start(env, log)`, which resolves once the role serves and returns its stop. SIGTERM and SIGINT stop
 * it and exit 0; a ConfigError exits 2 naming the variable and what is allowed.
 */
import { ConfigError, type Env } from './config.js'
import { Log } from './log.js'

/** A started role: `stop` closes what it holds (HTTP, libp2p, NATS, SurrealDB) and resolves. */
export interface RoleHandle { stop: () => Promise<void> }
export type StartRole = (env: Env, log: Log) => Promise<RoleHandle>

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
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info('stopping', { signal })
      void handle.stop().finally(resolve)
    }
    process.once('SIGTERM', () => { stop('SIGTERM') })
    process.once('SIGINT', () => { stop('SIGINT') })
  })
  return 0
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main(process.argv.slice(2)).then((code) => { process.exit(code) }, (err: unknown) => {
    process.stderr.write(`net-sync: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  })
}
