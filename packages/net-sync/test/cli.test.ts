/** The command's stop: a role whose stop never finishes still lets the process exit, and says so. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { stopWithin } from '../src/cli.js'
import { Log } from '../src/index.js'

function recorded (): { log: Log, msgs: () => string[] } {
  const lines: string[] = []
  return { log: new Log('orchestrator', (l) => { lines.push(l) }), msgs: () => lines.map((l) => (JSON.parse(l) as { msg: string }).msg) }
}

test('a stop that finishes in time: true, and nothing logged', async () => {
  const { log, msgs } = recorded()
  assert.equal(await stopWithin(async () => { await sleep(10) }, 1000, log), true)
  assert.deepEqual(msgs(), [])
})

test('a stop that never finishes: false after the grace, logged "stop timed out"', async () => {
  const { log, msgs } = recorded()
  const started = Date.now()
  assert.equal(await stopWithin(async () => { await new Promise(() => {}) }, 200, log), false)
  assert.ok(Date.now() - started >= 190)
  assert.deepEqual(msgs(), ['stop timed out'])
})

test('a stop that throws: logged "stop failed", and the process may still exit', async () => {
  const { log, msgs } = recorded()
  assert.equal(await stopWithin(async () => { throw new Error('NATS drain refused') }, 1000, log), true)
  assert.deepEqual(msgs(), ['stop failed'])
})
