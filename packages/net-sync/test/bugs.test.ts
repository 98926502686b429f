/**
 * Planted bugs (bugs.ts): NETSYNC_BUGGIFY read as netsync reads it, KNOWN_BUGS (the image's label) being
 * exactly the flags bugs.ts describes, and the announce of a role's flags on stderr and at error level.
 * What each flag breaks is proven by its scenario (`make efficacy SUT=net-sync-ts`).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { announce, FLAGS } from '../src/bugs.js'
import { agentConfig, ConfigError, KNOWN_BUGS, parseBugs } from '../src/config.js'
import { Log } from '../src/log.js'

const ORCH = '/dns4/toxiproxy/tcp/21000/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp'

test('NETSYNC_BUGGIFY: comma-separated names, blanks and spaces ignored, unset or empty is none', () => {
  assert.deepEqual([...parseBugs({})], [])
  assert.deepEqual([...parseBugs({ NETSYNC_BUGGIFY: '' })], [])
  assert.deepEqual([...parseBugs({ NETSYNC_BUGGIFY: ' journal-late , ,no-dedup-header,' })].sort(), ['journal-late', 'no-dedup-header'])
  assert.deepEqual([...agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_BUGGIFY: 'buffer-unbounded' }).bugs], ['buffer-unbounded'])
})

test('an unknown flag stops the start, naming it and every known one', () => {
  assert.throws(() => parseBugs({ NETSYNC_BUGGIFY: 'journal-late,skip-gap' }), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.equal(err.variable, 'NETSYNC_BUGGIFY')
    assert.match(err.message, /unknown planted bug "skip-gap"/)
    for (const name of KNOWN_BUGS) assert.ok(err.message.includes(name), `${name} named`)
    return true
  })
})

test('KNOWN_BUGS, the image label, is every flag bugs.ts describes, each of a role of this package', () => {
  assert.deepEqual([...KNOWN_BUGS].sort(), Object.keys(FLAGS).sort())
  for (const [name, flag] of Object.entries(FLAGS)) {
    assert.match(name, /^[a-z]+(-[a-z]+)*$/)
    assert.ok(['agent', 'orchestrator', 'projector'].includes(flag.role), `${name}: ${flag.role}`)
  }
})

test("a role announces its own flags at error level and on stderr, not another role's", (t) => {
  const lines: string[] = []
  const stderr: string[] = []
  t.mock.method(process.stderr, 'write', (chunk: string) => { stderr.push(chunk); return true })
  announce(new Set(['journal-late', 'no-dedup-header']), 'agent', new Log('agent-1', (l) => { lines.push(l) }))
  t.mock.restoreAll()
  assert.equal(lines.length, 1)
  const rec = JSON.parse(lines[0]!) as Record<string, unknown>
  assert.equal(rec.level, 'error')
  assert.equal(rec.flag, 'journal-late')
  assert.deepEqual(stderr, [`net-sync agent: BUGGIFY journal-late is ON: ${FLAGS['journal-late']!.mistake}\n`])
})
