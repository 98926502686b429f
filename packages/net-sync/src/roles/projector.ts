/**
 * `net-sync projector` (docs/contract.md, "Projector: the only writer of SurrealDB"): the Projector of
 * src/projector.ts, configured from the environment, with `GET /healthz` (`{"name", "connected_nats",
 * "connected_surreal", "last_seq"}`) and `GET /metrics` (netsync's projector metric names) on
 * NETSYNC_HTTP_PORT.
 */
import { announce } from '../bugs.js'
import type { RoleHandle } from '../cli.js'
import { projectorConfig, type Env } from '../config.js'
import { close, httpServer, json, listen } from '../http.js'
import type { Log } from '../log.js'
import { Projector } from '../projector.js'

export async function start (env: Env, log: Log): Promise<RoleHandle> {
  const config = projectorConfig(env)
  announce(config.bugs, 'projector', log)
  const projector = new Projector(config, log)
  const server = httpServer([
    { method: 'GET', path: '/healthz', handler: () => json(200, projector.health()) },
    {
      method: 'GET',
      path: '/metrics',
      handler: async () => {
        const { contentType, body } = await projector.metrics.text()
        return { status: 200, text: body, contentType }
      }
    }
  ], log)
  const port = await listen(server, config.httpPort)
  log.info('http listening', { port })
  projector.start()
  return {
    stop: async () => {
      await projector.stop()
      await close(server)
    }
  }
}
