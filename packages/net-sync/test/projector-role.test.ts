/**
 * `net-sync projector` against a real nats-server and SurrealDB 3.3.5 (the project's builds): commitments
 * published into the stream as the orchestrator publishes them end up as rows; a redelivery rewrites the
 * row; malformed bodies are dead-lettered and the messages behind them stored; a SurrealDB outage acks
 * nothing and loses nothing; and netsync's own projector, on the same stream, writes the same rows.
 */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect, headers, type NatsConnection } from '@nats-io/transport-node'
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream'
import { ServerError, type Surreal } from 'surrealdb'
import { changefeedRetention, COMMAND_SUBJECT, ConfigError, Log, openStore, toJson, writeSentiment } from '../src/index.js'
import { start } from '../src/roles/projector.js'
import { refused, SurrealUnavailable } from '../src/surreal-session.js'
import type { RoleHandle } from '../src/cli.js'
import { child, freePort, startSurreal, startNatsServer, until, ROOT, PYTHON, type NatsServer, type SurrealServer } from './helpers.js'

const STREAM = 'SENTIMENT'

const ACK_WAIT_MS = 2_000

let nats: NatsServer
let surreal: SurrealServer
let surrealPort: number
let nc: NatsConnection
let js: JetStreamClient
let jsm: JetStreamManager
let db: Surreal
let projector: RoleHandle | undefined
let httpPort: number
const lines: string[] = []

function env (): Record<string, string> {
  return {
    NETSYNC_NAME: 'projector-ts',
    NETSYNC_NATS_URL: nats.url,
    NETSYNC_SURREAL_URL: surreal.url,
    NETSYNC_HTTP_PORT: String(httpPort),
    NETSYNC_ACK_WAIT_MS: String(ACK_WAIT_MS),
    NETSYNC_CHANGEFEED_RETENTION: '30m'
  }
}

async function startProjector (): Promise<void> {
  projector = await start(env(), new Log('projector-ts', (line) => { lines.push(line) }))
}

async function stopProjector (): Promise<void> {
  await projector?.stop()
  projector = undefined
}

/** `until`, its error ending with the projector's last log lines. */
async function awaited<T> (what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  return await until(what, probe, { timeoutMs, context: () => `the projector's last lines:\n${lines.slice(-15).join('')}` })
}

interface Health { name: string, connected_nats: boolean, connected_surreal: boolean, last_seq: number }
async function health (): Promise<Health> {
  return await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json() as Health
}

async function metric (name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? NaN : Number(line.split(' ')[1])
}

/** Publish a body as the orchestrator does (Nats-Msg-Id and Correlation-Id the cid); its stream seq. */
async function publish (body: string | object, cid?: string, msgID?: string): Promise<number> {
  const h = headers()
  if (cid !== undefined) h.set('Correlation-Id', cid)
  const ack = await js.publish(COMMAND_SUBJECT, typeof body === 'string' ? body : toJson(body),
    { headers: h, ...(msgID !== undefined ? { msgID } : {}) })
  return ack.seq
}

function commitment (cid: string, key: string, value: bigint | number): object {
  return { cid, key, value, proposer: 'agent-1', decided_at: Date.now() / 1000 }
}

type Row = Record<string, unknown>
async function row (cid: string): Promise<Row | undefined> {
  const [rows] = await db.query("SELECT * FROM type::record('sentiment', $cid);", { cid }).collect<[Row[]]>()
  return rows[0]
}

/** The table's definition, as INFO FOR DB gives it. */
async function tableInfo (session: Surreal): Promise<string> {
  return (await session.query('INFO FOR DB;').collect<[{ tables: Record<string, string> }]>())[0].tables.sentiment ?? ''
}

function logged (msg: string): Array<Record<string, unknown>> {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.msg === msg)
}

before(async () => {
  nats = await startNatsServer()
  surrealPort = await freePort()
  surreal = await startSurreal(surrealPort)
  httpPort = await freePort()
  nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 })
  jsm = await jetstreamManager(nc)
  js = jetstream(nc)
  await jsm.streams.add({ name: STREAM, subjects: ['root.solar.command.>'], duplicate_window: 120e9 })
  db = await openStore({ url: surreal.url, user: 'root', pass: 'root', ns: 'solar', db: 'netsync' })
  await startProjector()
})

after(async () => {
  await stopProjector()
  await db?.close()
  await nc?.close()
  await surreal?.stop()
  await nats?.stop()
})

test('NETSYNC_CHANGEFEED_RETENTION: a SurrealDB duration above zero, 1h by default', () => {
  assert.equal(changefeedRetention({}), '1h')
  assert.equal(changefeedRetention({ NETSYNC_CHANGEFEED_RETENTION: '1h30m' }), '1h30m')
  for (const bad of ['0s', '10', '1 h', '5m; REMOVE TABLE sentiment']) {
    assert.throws(() => changefeedRetention({ NETSYNC_CHANGEFEED_RETENTION: bad }),
      (e: unknown) => e instanceof ConfigError && e.variable === 'NETSYNC_CHANGEFEED_RETENTION')
  }
})

test("an outage is told from a refusal by SurrealDB's error kind, never by words it may echo", () => {
  const answer = (kind: string, message: string, detail?: string): ServerError =>
    new ServerError({ kind, message, ...(detail !== undefined ? { details: { kind: detail } } : {}) })
  const transient = [
    answer('Query', 'Transaction conflict: Resource busy', 'TransactionConflict'),
    answer('Connection', 'anything'),
    answer('Query', 'There was a problem with a transaction: WAL error: IO error: (os error 5)', 'NotExecuted'),
    answer('Internal', 'There was a problem with the key-value store: There was a problem with a transaction: I/O error: x'),
    answer('NotAllowed', 'The datastore is in read-and-deletion-only mode'),
    new ServerError({ kind: 'Query', code: -32009, message: 'conflict' }),
    new SurrealUnavailable('no answer within 10 s'),
    Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
  ]
  const permanent = [
    answer('Thrown', 'I/O error: a user THROW'),
    answer('Validation', 'There was a problem with a transaction: parse'),
    answer('AlreadyExists', 'Transaction conflict:'),
    answer('Internal', "Found 'I/O error: x' for field `key`"),
    answer('Query', 'There was a problem with a transaction: x', 'TimedOut'),
    new TypeError('cannot encode')
  ]
  assert.deepEqual(transient.map(refused), transient.map(() => false))
  assert.deepEqual(permanent.map(refused), permanent.map(() => true))
})

test('commitments in the stream become rows {cid, key, value, stream_seq, written_at}; /healthz and /metrics say so', async () => {
  const seqs = [
    await publish(commitment('p-1', 'ключ ☀', 9223372036854775807n), 'p-1', 'p-1'),
    await publish(commitment('p-2', 'k', -5), 'p-2', 'p-2'),
    await publish(commitment('p-3', 'k', 0), 'p-3', 'p-3')
  ]
  const r1 = await awaited('row p-1', async () => await row('p-1'))
  assert.equal(String(r1.id), 'sentiment:⟨p-1⟩') // the record id is the cid (SurrealQL quotes its `-`)
  assert.deepEqual([r1.cid, r1.key, BigInt(r1.value as bigint), Number(r1.stream_seq)], ['p-1', 'ключ ☀', 9223372036854775807n, seqs[0]])
  assert.ok(r1.written_at instanceof Date || String(r1.written_at) !== '', `written_at: ${String(r1.written_at)}`)
  const r3 = await awaited('row p-3', async () => await row('p-3'))
  assert.deepEqual([r3.key, Number(r3.value), Number(r3.stream_seq)], ['k', 0, seqs[2]])
  const h = await awaited('last_seq at the third message', async () => { const x = await health(); return x.last_seq === seqs[2] ? x : undefined })
  assert.deepEqual(h, { name: 'projector-ts', connected_nats: true, connected_surreal: true, last_seq: seqs[2] })
  assert.equal(await metric('netsync_projected_total'), 3)
  assert.equal(await metric('netsync_projector_last_seq'), seqs[2])
  assert.equal(await metric('netsync_projector_nats_connected'), 1)
  assert.equal(await metric('netsync_projector_surreal_connected'), 1)
  assert.ok(await metric('process_resident_memory_bytes') > 0)
  assert.deepEqual(logged('projected').map((r) => [r.cid, r.seq]), [['p-1', seqs[0]], ['p-2', seqs[1]], ['p-3', seqs[2]]])
  assert.match(await tableInfo(db), /CHANGEFEED 30m/)
})

test('a redelivery rewrites the same row: a projector that wrote and crashed before its ack', async () => {
  await stopProjector()
  const seq = await publish(commitment('r-1', 'k', 7), 'r-1', 'r-1')
  // the crashed projector: fetched r-1 from the durable consumer, wrote its row, never acked
  const [m] = await (async () => {
    const got = []
    for await (const x of await (await js.consumers.get(STREAM, 'projector')).fetch({ max_messages: 1, expires: 2000 })) got.push(x)
    return got
  })()
  assert.equal(m?.seq, seq)
  await writeSentiment(db, { cid: 'r-1', key: 'k', value: 7, seq })
  const first = await row('r-1')
  await startProjector()
  await awaited('r-1 projected again', async () => logged('projected').some((r) => r.cid === 'r-1') ? true : undefined)
  const [rows] = await db.query("SELECT * FROM sentiment WHERE cid = 'r-1';").collect<[Row[]]>()
  assert.equal(rows.length, 1)
  assert.equal(Number(rows[0]!.stream_seq), seq)
  assert.notEqual(String(rows[0]!.written_at), String(first?.written_at), 'the row was written again')
  const info = await jsm.consumers.info(STREAM, 'projector')
  assert.equal(info.num_ack_pending, 0)
  assert.equal(info.ack_floor.stream_seq, seq)
})

test('malformed bodies are dead-lettered (terminated, logged, counted); the messages behind them are stored', async () => {
  const dead0 = await metric('netsync_projector_dead_letters_total')
  const bad = [await publish('not json {', undefined, 'm-bad-1')]
  const between = await publish(commitment('m-between', 'k', 1), 'm-between', 'm-between')
  bad.push(
    await publish('{"cid": "m-float", "key": "k", "value": 1.5}', 'm-float', 'm-float'),
    await publish('{"cid": "m-big", "key": "k", "value": 18446744073709551616}', 'm-big', 'm-big'),
    await publish('{"cid": "m-surrogate", "key": "\\ud800", "value": 1}', 'm-surrogate', 'm-surrogate'),
    await publish('{"key": "k", "value": 1}', undefined, 'm-nocid'),
    await publish('[1, 2]', undefined, 'm-array')
  )
  const good = await publish(commitment('m-good', 'k', 42), 'm-good', 'm-good')
  const r = await awaited('row m-good behind the malformed', async () => await row('m-good'))
  assert.equal(Number(r.stream_seq), good)
  assert.equal(Number((await row('m-between'))?.stream_seq), between)
  const dead = logged('dead-lettered').filter((x) => bad.includes(x.seq as number))
  assert.deepEqual(dead.map((x) => [x.seq, x.cid, x.cause, x.level]), [
    [bad[0], undefined, 'malformed', 'error'],
    [bad[1], 'm-float', 'malformed', 'error'],
    [bad[2], 'm-big', 'malformed', 'error'],
    [bad[3], 'm-surrogate', 'malformed', 'error'],
    [bad[4], undefined, 'malformed', 'error'],
    [bad[5], undefined, 'malformed', 'error']
  ])
  assert.deepEqual(dead.map((x) => x.reason), [
    dead[0]!.reason, 'value missing or not an integer', 'value 18446744073709551616 is outside the 64-bit integers SurrealDB stores',
    'key is not valid Unicode (a lone surrogate)', 'cid missing or not a non-empty string', 'body is not a JSON object'
  ])
  assert.match(String(dead[0]!.reason), /^body is not JSON: /)
  assert.equal(dead[0]!.body, 'not json {')
  assert.equal(await metric('netsync_projector_dead_letters_total'), dead0 + 6)
  for (const cid of ['m-float', 'm-big', 'm-surrogate']) assert.equal(await row(cid), undefined)
  // terminated, never redelivered, and still in the stream for an operator to read by seq
  const info = await awaited('every message finished', async () => {
    const i = await jsm.consumers.info(STREAM, 'projector')
    return i.num_ack_pending === 0 && i.num_pending === 0 ? i : undefined
  })
  assert.equal(info.num_redelivered, 0)
  assert.equal((await jsm.streams.getMessage(STREAM, { seq: bad[0]! }))?.string(), 'not json {')
})

test("netsync's projector, on the same stream into another database, writes the same rows", async () => {
  const port = await freePort()
  const py = child(PYTHON, ['-m', 'netsync', 'projector'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env(), NETSYNC_NAME: 'projector-py', NETSYNC_HTTP_PORT: String(port), NETSYNC_CONSUMER: 'projector-py', NETSYNC_SURREAL_DB: 'netsync_py' }
  }, 'SIGTERM')
  const out = py.log
  try {
    const last = (await jsm.streams.info(STREAM)).state.last_seq
    await awaited(`netsync's projector at seq ${last}`, async () => {
      const i = await jsm.consumers.info(STREAM, 'projector-py')
      return i.num_ack_pending === 0 && i.num_pending === 0 && i.delivered.stream_seq === last ? true : undefined
    }, 30_000).catch((err: unknown) => { throw new Error(`${String(err)}\n${out.join('')}`) })
    const dbPy = await openStore({ url: surreal.url, user: 'root', pass: 'root', ns: 'solar', db: 'netsync_py' })
    const read = async (session: Surreal): Promise<Row[]> => {
      const [rows] = await session.query('SELECT * FROM sentiment ORDER BY cid;').collect<[Row[]]>()
      return rows.map(({ written_at: at, ...rest }) => {
        assert.ok(at instanceof Date || typeof at === 'object', `written_at is a datetime: ${String(at)}`)
        return { ...rest, id: String(rest.id), value: BigInt(rest.value as bigint) }
      })
    }
    try {
      const ts = await read(db)
      assert.ok(ts.length >= 6)
      assert.deepEqual(ts, await read(dbPy))
      assert.equal(await tableInfo(db), await tableInfo(dbPy))
    } finally {
      await dbPy.close()
    }
    // netsync's projector metrics, each served by ours too
    const names = (text: string): Set<string> => new Set(text.split('\n').filter((l) => l.startsWith('netsync_')).map((l) => l.split(/[ {]/)[0]!))
    const pyNames = names(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())
    const tsNames = names(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text())
    assert.ok(pyNames.size >= 6)
    assert.deepEqual([...pyNames].filter((n) => !tsNames.has(n)), [])
    // the same dead letters: seq, cid, cause and reason (but for the JSON parser's own words), attempts, body
    const pyDead = out.join('').split('\n').filter((l) => l.includes('"dead-lettered"')).map((l) => JSON.parse(l) as Record<string, unknown>)
    const tsDead = logged('dead-lettered')
    const shape = (x: Record<string, unknown>): unknown[] =>
      [x.seq, x.cid, x.cause, String(x.reason).startsWith('body is not JSON') ? 'body is not JSON' : x.reason, x.attempts, x.body]
    assert.deepEqual(tsDead.map(shape), pyDead.map(shape))
  } finally {
    await py.stop()
  }
})

test('a write SurrealDB refuses 8 times is dead-lettered (cause refused) and the message behind it stored; a key echoing a store failure is no outage', async () => {
  // an operator's schema refusing some keys: SurrealDB's answer then echoes the key it refused
  await db.query("DEFINE FIELD key ON sentiment TYPE string ASSERT !string::starts_with($value, 'I/O error');").collect()
  const refusedSeq = await publish(commitment('x-refused', 'I/O error: EIO (os error 5)', 1), 'x-refused', 'x-refused')
  const behind = await publish(commitment('x-behind', 'k', 2), 'x-behind', 'x-behind')
  const r = await awaited('row x-behind', async () => await row('x-behind'), 20_000)
  assert.equal(Number(r.stream_seq), behind)
  const [dead] = logged('dead-lettered').filter((x) => x.seq === refusedSeq)
  assert.equal(dead?.cause, 'refused')
  assert.equal(dead?.cid, 'x-refused')
  assert.equal(dead?.attempts, 8)
  // SurrealDB 3.3.5 answers kind Internal, its text starting with the echo: "Found 'I/O error: ...' for field `key`"
  assert.match(String(dead?.reason), /^SurrealDB refused it 8 times: InternalError\("Found 'I\/O error: EIO/)
  assert.equal(await row('x-refused'), undefined)
  assert.equal(logged('surreal write failed, not acking; retrying').filter((x) => x.cid === 'x-refused').length, 7)
  await db.query('REMOVE FIELD key ON sentiment;').collect()
})

test('SurrealDB stopped: nothing is acked meanwhile; restarted: everything is stored after', async () => {
  const dead0 = await metric('netsync_projector_dead_letters_total')
  const acked0 = (await health()).last_seq
  await surreal.stop()
  await awaited('connected_surreal false', async () => (await health()).connected_surreal ? undefined : true)
  const seqs = [
    await publish(commitment('o-1', 'k', 1), 'o-1', 'o-1'),
    await publish(commitment('o-2', 'k', 2), 'o-2', 'o-2'),
    await publish(commitment('o-3', 'k', 3), 'o-3', 'o-3')
  ]
  await awaited('write failures counted', async () => await metric('netsync_projector_write_failures_total') >= 3 ? true : undefined)
  const held = await jsm.consumers.info(STREAM, 'projector')
  assert.equal(held.num_ack_pending, 3, 'delivered, none acked')
  assert.equal(held.ack_floor.stream_seq, acked0)
  assert.equal((await health()).last_seq, acked0)
  await sleep(ACK_WAIT_MS * 1.5) // past the ack wait: the in-progress acks keep them from redelivery
  assert.equal((await jsm.consumers.info(STREAM, 'projector')).num_redelivered, 0)
  surreal = await startSurreal(surrealPort)
  await db.close()
  db = await openStore({ url: surreal.url, user: 'root', pass: 'root', ns: 'solar', db: 'netsync' })
  for (const [i, cid] of ['o-1', 'o-2', 'o-3'].entries()) {
    const r = await awaited(`row ${cid} after the restart`, async () => await row(cid))
    assert.equal(Number(r.stream_seq), seqs[i])
  }
  const h = await awaited('everything acked', async () => { const x = await health(); return x.last_seq === seqs[2] ? x : undefined })
  assert.equal(h.connected_surreal, true)
  assert.equal((await jsm.consumers.info(STREAM, 'projector')).num_ack_pending, 0)
  assert.equal(await metric('netsync_projector_dead_letters_total'), dead0, 'an outage dead-letters nothing')
  assert.ok(logged('write succeeded after retries').some((r) => r.cid === 'o-1'))
})

test('the stream deleted: connected_nats false; made again: the consumer is set up again and projects', async () => {
  await jsm.streams.delete(STREAM)
  await awaited('connected_nats false', async () => (await health()).connected_nats ? undefined : true)
  await jsm.streams.add({ name: STREAM, subjects: ['root.solar.command.>'], duplicate_window: 120e9 })
  const seq = await publish(commitment('g-1', 'k', 9), 'g-1', 'g-1')
  const r = await awaited('row g-1 from the new stream', async () => await row('g-1'))
  assert.equal(Number(r.stream_seq), seq)
  assert.equal((await health()).connected_nats, true)
  assert.ok(logged('consumer gone, setting it up again').length >= 1)
})

test('NATS killed: connected_nats false; a fresh server on its port: the projector reconnects, waits for the stream, projects', async () => {
  await nats.stop()
  await awaited('connected_nats false', async () => (await health()).connected_nats ? undefined : true)
  assert.equal(await metric('netsync_projector_nats_connected'), 0)
  nats = await startNatsServer(Number(new URL(nats.url).port))
  await awaited('the stream made on the fresh server', async () => {
    await jsm.streams.add({ name: STREAM, subjects: ['root.solar.command.>'], duplicate_window: 120e9 })
    return true
  })
  const seq = await publish(commitment('n-1', 'k', 4), 'n-1', 'n-1')
  const r = await awaited('row n-1 through the fresh server', async () => await row('n-1'))
  assert.equal(Number(r.stream_seq), seq)
  assert.equal((await health()).connected_nats, true)
  assert.equal(await metric('netsync_projector_nats_connected'), 1)
})
