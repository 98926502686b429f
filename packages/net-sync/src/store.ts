/**
 * The projector's store (docs/contract.md, "Projector: the only writer of SurrealDB"): a signed-in
 * SurrealDB session on the configured namespace and database (defined when missing, as netsync does),
 * and the one write: `UPSERT type::record('sentiment', <cid>)` with `{cid, key, value, stream_seq,
 * written_at}`, so a redelivery rewrites the same row.
 */
import { ConnectionUnavailableError, Surreal } from 'surrealdb'
import { changefeedRetention } from './config.js'

export const SENTIMENT_TABLE = 'sentiment'
export const UPSERT =
  'UPSERT type::record($tb, $cid) CONTENT {cid: $cid, key: $key, value: $value, stream_seq: $seq, written_at: time::now()};'
/** duplicate-rows (bugs.ts): a row with a fresh id per write, so a redelivery adds a second row */
const CREATE_FRESH =
  'CREATE type::table($tb) CONTENT {cid: $cid, key: $key, value: $value, stream_seq: $seq, written_at: time::now()};'

export interface StoreConfig {
  /** NETSYNC_SURREAL_URL: ws://host:port/rpc */
  url: string
  user: string
  pass: string
  ns: string
  db: string
  /** NETSYNC_CHANGEFEED_RETENTION: when given, the table is defined `IF NOT EXISTS ... CHANGEFEED <it>`
   * before any row could create it without one, as netsync's projector does */
  changefeed?: string
  /** the SDK's own reconnecting (default true); false for a caller that opens a new session itself */
  reconnect?: boolean
}

export interface SentimentRow {
  cid: string
  key: string
  value: bigint | number
  /** the message's stream sequence */
  seq: number
}

const IDENT = /^[A-Za-z0-9_]+$/

/**
 * Node 22's WebSocket (undici) fires `error` but never `close` when the connection is refused (its state
 * stays CONNECTING), and SDK 2.0.8 waits for that `close` before it says anything, so connecting to a
 * SurrealDB that is down never settled. This one closes what failed before it opened.
 */
class SettlingWebSocket extends WebSocket {
  constructor (url: string | URL, protocols?: ConstructorParameters<typeof WebSocket>[1]) {
    super(url, protocols)
    this.addEventListener('error', () => {
      if (this.readyState === WebSocket.CONNECTING) this.dispatchEvent(new Event('close'))
    })
  }
}

/** Connect, sign in, define the namespace and database when missing, and use them. */
export async function openStore (config: StoreConfig): Promise<Surreal> {
  for (const [what, name] of [['NETSYNC_SURREAL_NS', config.ns], ['NETSYNC_SURREAL_DB', config.db]] as const) {
    if (!IDENT.test(name)) throw new RangeError(`${what}=${JSON.stringify(name)}: letters, digits and _ only`)
  }
  if (config.changefeed !== undefined) changefeedRetention({ NETSYNC_CHANGEFEED_RETENTION: config.changefeed })
  const db = new Surreal({ websocketImpl: SettlingWebSocket })
  try {
    // Without reconnecting, SDK 2.0.8's connect does not settle when the socket closed before opening:
    // its engine says `disconnected`, which connect does not wait for. That event is the failure.
    let unsubscribe = (): void => {}
    const lost = new Promise<never>((_resolve, reject) => {
      unsubscribe = db.subscribe('disconnected', () => { reject(new ConnectionUnavailableError()) })
    })
    lost.catch(() => {})
    try {
      await Promise.race([db.connect(config.url, { reconnect: config.reconnect ?? true }), lost])
    } finally {
      unsubscribe()
    }
    await db.signin({ username: config.user, password: config.pass })
    await db.query(`DEFINE NAMESPACE IF NOT EXISTS \`${config.ns}\`; USE NS \`${config.ns}\`; DEFINE DATABASE IF NOT EXISTS \`${config.db}\`;`).collect()
    await db.use({ namespace: config.ns, database: config.db })
    if (config.changefeed !== undefined) {
      await db.query(`DEFINE TABLE IF NOT EXISTS ${SENTIMENT_TABLE} CHANGEFEED ${config.changefeed};`).collect()
    }
  } catch (err) {
    await db.close().catch(() => {})
    throw err
  }
  return db
}

/** Write one message's row; resolves once SurrealDB answered the write (ack only after it). `freshId`: the
 * planted bug duplicate-rows. */
export async function writeSentiment (db: Surreal, row: SentimentRow, freshId = false): Promise<void> {
  await db.query(freshId ? CREATE_FRESH : UPSERT, { tb: SENTIMENT_TABLE, cid: row.cid, key: row.key, value: row.value, seq: row.seq }).collect()
}
