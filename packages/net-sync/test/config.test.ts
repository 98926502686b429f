import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  agentConfig, configFromEnv, ConfigError, orchestratorConfig, projectorConfig, INT64_MAX
} from '../src/index.js'

const ORCH = '/dns4/toxiproxy/tcp/21000/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp'
const P2 = '/dns4/toxiproxy/tcp/21002/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'
const P3 = '/dns4/toxiproxy/tcp/21003/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'

function configError (fn: () => unknown, variable: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`)
    assert.equal(err.name, 'ConfigError')
    assert.equal(err.variable, variable)
    assert.match(err.message, new RegExp(variable))
    assert.match(err.message, pattern)
    return true
  })
}

test('an agent with only NETSYNC_ORCHESTRATOR takes every default of the contract', () => {
  const c = agentConfig({ NETSYNC_ORCHESTRATOR: ORCH })
  assert.equal(c.name, 'agent')
  assert.equal(c.identitySeed, 'agent')
  assert.equal(c.listen.toString(), '/ip4/0.0.0.0/tcp/4001')
  assert.deepEqual(c.peers, [])
  assert.equal(c.orchestrator.peerId, '12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp')
  assert.equal(c.quorum, 1)
  assert.equal(c.bufferCap, 256)
  assert.equal(c.journalDir, '/var/lib/netsync')
  assert.equal(c.intentTimeoutMs, 80)
  assert.equal(c.commitTimeoutMs, 400)
  assert.equal(c.replayIntervalMs, 200)
  assert.equal(c.valueMin, -1000000n)
  assert.equal(c.valueMax, 1000000n)
  assert.equal(c.httpPort, 8080)
  assert.equal(c.bugs.size, 0)
})

test('the identity seed defaults to the name; the quorum to a majority of the agents', () => {
  const three = agentConfig({ NETSYNC_NAME: 'agent-1', NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_PEERS: `agent-2=${P2}, agent-3=${P3}` })
  assert.equal(three.identitySeed, 'agent-1')
  assert.deepEqual(three.peers.map((p) => [p.name, p.addr.toString()]), [['agent-2', P2], ['agent-3', P3]])
  assert.equal(three.quorum, 2)
  const two = agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_PEERS: `agent-2=${P2}` })
  assert.equal(two.quorum, 2)
  assert.equal(agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_IDENTITY_SEED: 's' }).identitySeed, 's')
})

test('an empty variable counts as unset, as in netsync', () => {
  const c = agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_BUFFER_CAP: '', NETSYNC_NAME: '', NETSYNC_PEERS: '' })
  assert.equal(c.bufferCap, 256)
  assert.equal(c.name, 'agent')
})

test('the voting range reaches the 64-bit integers exactly, beyond what a JS number holds', () => {
  const c = agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_VALUE_MIN: '-9223372036854775808', NETSYNC_VALUE_MAX: '9223372036854775807' })
  assert.equal(c.valueMax, INT64_MAX)
  assert.equal(c.valueMin, -INT64_MAX - 1n)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_VALUE_MAX: '9223372036854775808' }), 'NETSYNC_VALUE_MAX', /64-bit integer/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_VALUE_MIN: '5', NETSYNC_VALUE_MAX: '4' }), 'NETSYNC_VALUE_MAX', /not be below NETSYNC_VALUE_MIN=5/)
})

test('bad agent settings name the variable and what is allowed', () => {
  configError(() => agentConfig({}), 'NETSYNC_ORCHESTRATOR', /required/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: '/dns4/toxiproxy/tcp/21000' }), 'NETSYNC_ORCHESTRATOR', /ending in \/p2p\/<peer id>/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: 'toxiproxy:21000' }), 'NETSYNC_ORCHESTRATOR', /not a multiaddr/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: '/dns4/t/tcp/1/p2p/notapeer' }), 'NETSYNC_ORCHESTRATOR', /not a multiaddr|not a peer id/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_PEERS: P2 }), 'NETSYNC_PEERS', /name=multiaddr/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_PEERS: `a=${P2},a=${P3}` }), 'NETSYNC_PEERS', /twice/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_PEERS: `a=${P2}`, NETSYNC_QUORUM: '3' }), 'NETSYNC_QUORUM', /between 1 and 2/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_QUORUM: '0' }), 'NETSYNC_QUORUM', /between 1 and 1/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_BUFFER_CAP: 'lots' }), 'NETSYNC_BUFFER_CAP', /"lots" is not an integer/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_BUFFER_CAP: '-1' }), 'NETSYNC_BUFFER_CAP', /1 to 1000000/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_BUFFER_CAP: '0' }), 'NETSYNC_BUFFER_CAP', /must be an integer from 1 to 1000000/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_INTENT_TIMEOUT_MS: '0' }), 'NETSYNC_INTENT_TIMEOUT_MS', /positive number of milliseconds/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_COMMIT_TIMEOUT_MS: '1.5' }), 'NETSYNC_COMMIT_TIMEOUT_MS', /not an integer/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_HTTP_PORT: '70000' }), 'NETSYNC_HTTP_PORT', /1 to 65535/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_LISTEN: 'tcp:4001' }), 'NETSYNC_LISTEN', /not a multiaddr/)
  configError(() => agentConfig({ NETSYNC_ORCHESTRATOR: ORCH, NETSYNC_BUGGIFY: 'skip-gap' }), 'NETSYNC_BUGGIFY', /unknown planted bug "skip-gap"/)
})

test('the orchestrator: NATS servers comma-separated, the stream settings with their defaults', () => {
  configError(() => orchestratorConfig({}), 'NETSYNC_NATS_URL', /required/)
  configError(() => orchestratorConfig({ NETSYNC_NATS_URL: ' , ' }), 'NETSYNC_NATS_URL', /names no server/)
  const c = orchestratorConfig({ NETSYNC_NATS_URL: 'nats://toxiproxy:23011, nats://toxiproxy:23012' })
  assert.deepEqual(c.natsServers, ['nats://toxiproxy:23011', 'nats://toxiproxy:23012'])
  assert.equal(c.name, 'orchestrator')
  assert.equal(c.identitySeed, 'orchestrator')
  assert.deepEqual(c.stream, {
    name: 'SENTIMENT', subjects: ['root.solar.command.>'], maxMsgs: -1, maxBytes: -1, maxAgeS: 0, duplicateWindowS: 120, replicas: 1
  })
  assert.equal(c.publishTimeoutMs, 300)
  const d = orchestratorConfig({ NETSYNC_NATS_URL: 'nats://n:4222', NETSYNC_DUPLICATE_WINDOW_S: '2.5', NETSYNC_STREAM_REPLICAS: '3' })
  assert.equal(d.stream.duplicateWindowS, 2.5)
  assert.equal(d.stream.replicas, 3)
  configError(() => orchestratorConfig({ NETSYNC_NATS_URL: 'nats://n:4222', NETSYNC_DUPLICATE_WINDOW_S: 'two' }), 'NETSYNC_DUPLICATE_WINDOW_S', /not a number/)
})

test('the projector: SurrealDB required, credentials and names defaulted', () => {
  configError(() => projectorConfig({ NETSYNC_NATS_URL: 'nats://n:4222' }), 'NETSYNC_SURREAL_URL', /required: ws:\/\/host:port\/rpc/)
  const c = projectorConfig({ NETSYNC_NATS_URL: 'nats://n:4222', NETSYNC_SURREAL_URL: 'ws://s:8000/rpc' })
  assert.deepEqual(
    [c.name, c.stream, c.consumer, c.ackWaitMs, c.surrealUser, c.surrealPass, c.surrealNs, c.surrealDb, c.httpPort],
    ['projector', 'SENTIMENT', 'projector', 30000, 'root', 'root', 'solar', 'netsync', 8080]
  )
})

test('configFromEnv picks the role, and refuses an unknown one', () => {
  assert.equal(configFromEnv('projector', { NETSYNC_NATS_URL: 'n:4222', NETSYNC_SURREAL_URL: 'ws://s/rpc' }).role, 'projector')
  configError(() => configFromEnv('scout', {}), 'role', /one of agent, orchestrator, projector/)
})
