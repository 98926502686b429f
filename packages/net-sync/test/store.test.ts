/** The projector's write against a real SurrealDB 3.3.5 (the project's build) through the surrealdb SDK 2.0.8. */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import type { Surreal } from 'surrealdb'
import { openStore, writeSentiment } from '../src/index.js'
import { python, startSurreal, type SurrealServer } from './helpers.js'

let server: SurrealServer
let db: Surreal
const config = (): { url: string, user: string, pass: string, ns: string, db: string } =>
  ({ url: server.url, user: 'root', pass: 'root', ns: 'solar', db: 'netsync' })

before(async () => {
  server = await startSurreal()
  db = await openStore(config())
})

after(async () => {
  await db?.close()
  await server?.stop()
})

async function rows (): Promise<Array<Record<string, unknown>>> {
  const [result] = await db.query('SELECT cid, key, value, stream_seq, written_at FROM sentiment ORDER BY cid').collect<[Array<Record<string, unknown>>]>()
  return result
}

test('a row per cid: a redelivery rewrites the same row; a 64-bit value is stored exactly', async () => {
  await writeSentiment(db, { cid: 'p1', key: 'k', value: 9223372036854775807n, seq: 1 })
  await writeSentiment(db, { cid: 'p2', key: 'ключ', value: -5, seq: 2 })
  await writeSentiment(db, { cid: 'p1', key: 'k', value: 9223372036854775807n, seq: 1 })
  const got = await rows()
  assert.deepEqual(got.map((r) => [r.cid, r.key, BigInt(r.value as bigint | number), Number(r.stream_seq)]),
    [['p1', 'k', 9223372036854775807n, 1], ['p2', 'ключ', -5n, 2]])
  assert.ok(got.every((r) => r.written_at !== undefined))
})

test("the Python SDK netsync's projector uses reads the same row: the record id is the cid, value an int", async () => {
  const seen = python(`
import asyncio, json, sys
from surrealdb import AsyncSurreal
async def main(url):
    db = AsyncSurreal(url)
    await db.connect()
    await db.signin({"username": "root", "password": "root"})
    await db.use("solar", "netsync")
    rows = await db.query("SELECT * FROM type::record('sentiment', 'p1')")
    await db.close()
    r = rows[0]
    return {"id": str(r["id"]), "value": str(r["value"]), "int": type(r["value"]).__name__}
print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
`, server.url)
  assert.deepEqual(JSON.parse(seen), { id: 'sentiment:p1', value: '9223372036854775807', int: 'int' })
})

test('a namespace or database name that is not an identifier is refused before connecting', async () => {
  await assert.rejects(openStore({ ...config(), ns: 'x`; REMOVE NAMESPACE solar; --' }), /NETSYNC_SURREAL_NS=.*letters, digits and _ only/)
})
