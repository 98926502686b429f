/**
 * The projector's one SurrealDB session (docs/contract.md, "Dead letters"), as netsync/surreal.py keeps
 * it: opened on demand, checked every second while idle, dropped on any failure but a refusal and opened
 * again by the next call; every call has a 10 s deadline. And the rule that tells an outage (retried for
 * as long as it takes) from a refusal of the statement (dead-lettered after 8), by SurrealDB's error kind.
 */
import { ServerError, type Surreal } from 'surrealdb'
import type { Log } from './log.js'
import { openStore, type StoreConfig } from './store.js'

export const OP_TIMEOUT_MS = 10_000

/** SurrealDB could not be reached, did not answer within the deadline, or the connection dropped mid-call. */
export class SurrealUnavailable extends Error {
  override name = 'SurrealUnavailable'
}

/** The SDK's errors that say the connection, not the statement, failed. */
const CONNECTION_ERRORS = new Set([
  'CallTerminatedError', 'ConnectionUnavailableError', 'UnexpectedConnectionError', 'ReconnectExhaustionError',
  'ReconnectIterationError', 'HttpConnectionError', 'UnexpectedServerResponseError'
])

// SurrealDB's answer echoes the value it refused ("Found 'x' for field `key`..."), so a phrase anywhere in
// its text says nothing; the kind decides, and for the kinds a storage failure shares with other errors
// only SurrealDB's own words at the very start of the text (surrealdb-core 3.3.5; netsync/surreal.py).
const STORE_KINDS = new Set(['Internal', 'NotAllowed', 'Query'])
const STORE_WRAPPERS = ['There was a problem with the key-value store: ']
const STORE_FAILURES = [
  'There was a problem with a transaction:',
  'There was a problem with the datastore:',
  'There was a problem with the underlying datastore', // SurrealDB 2.x
  'Connection to storage backend failed:',
  'The datastore is shutting down',
  'The datastore is in read-and-deletion-only mode', // its disk is full
  "The transaction's commit outcome is unknown", // the UPSERT is idempotent: write it again
  'Transaction conflict:',
  'Failed to commit transaction due to a read or write conflict', // SurrealDB 2.x
  'I/O error:'
]
const LEGACY_CONFLICT = -32009 // a server before 3.x said a lost conflict by its code alone

/** Whether SurrealDB's answer says its store failed or a transaction lost a conflict (retried however
 * long), rather than that it will not take the statement. Never from echoed text. The SDK reads a
 * missing kind (an older server) as `Internal`. */
export function storeFailed (err: ServerError): boolean {
  const detail = err.details?.kind
  if (err.kind === 'Connection' || (err.kind === 'Query' && detail === 'TransactionConflict') || err.code === LEGACY_CONFLICT) {
    return true
  }
  if (!STORE_KINDS.has(err.kind) || (err.kind === 'Query' && detail !== undefined && detail !== 'NotExecuted')) return false
  let text = err.message
  for (let w = STORE_WRAPPERS.find((p) => text.startsWith(p)); w !== undefined; w = STORE_WRAPPERS.find((p) => text.startsWith(p))) {
    text = text.slice(w.length)
  }
  return STORE_FAILURES.some((p) => text.startsWith(p))
}

/** Whether a failed write was the statement's own fault, so that writing it again cannot help: SurrealDB
 * answered with an error about it, or the client could not encode it. Not: connecting, a lost or silent
 * connection, a socket error, an answer saying the store failed. */
export function refused (err: unknown): boolean {
  if (err instanceof ServerError) return !storeFailed(err)
  if (err instanceof SurrealUnavailable || !(err instanceof Error)) return false
  if (CONNECTION_ERRORS.has(err.name)) return false
  return typeof (err as NodeJS.ErrnoException).code !== 'string' // ECONNREFUSED, ECONNRESET...: the socket's
}

/** `promise`, or SurrealUnavailable once `ms` passed without an answer. */
export async function deadline<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new SurrealUnavailable(`no answer within ${ms / 1000} s`)) }, ms)
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

/** One session, opened on demand; `onChange` hears true on connecting and false on dropping. */
export class SurrealSession {
  private db: Surreal | undefined
  private opening: Promise<Surreal> | undefined
  private downLogged = false

  constructor (private readonly config: StoreConfig, private readonly log: Log,
    private readonly onChange: (up: boolean) => void = () => {}) {}

  get connected (): boolean { return this.db !== undefined }

  /** Run `call` on the session (opened if needed). On any failure but SurrealDB's answer the session
   * is dropped, to be opened again by the next call; a connection that failed is a SurrealUnavailable. */
  async run<T> (call: (db: Surreal) => Promise<T>, timeoutMs = OP_TIMEOUT_MS): Promise<T> {
    let db: Surreal
    try {
      db = await this.session()
    } catch (err) { // whatever went wrong, no statement of ours was refused
      throw new SurrealUnavailable(`cannot connect: ${String(err)}`, { cause: err })
    }
    try {
      return await deadline(call(db), timeoutMs)
    } catch (err) {
      if (!(err instanceof ServerError)) await this.drop(db)
      throw err
    }
  }

  /** Connect at once and check the session every second while idle, so /healthz tells the truth before
   * the first message and during an outage with nothing to write; until `signal` aborts. */
  async watch (signal: AbortSignal, pause: (ms: number) => Promise<void>): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.run(async (db) => await db.query('RETURN 1;').collect(), 5_000)
      } catch (err) {
        if (!this.downLogged) {
          this.log.warning('surreal unreachable', { error: String(err) })
          this.downLogged = true
        }
      }
      await pause(1_000)
    }
  }

  private async session (): Promise<Surreal> {
    if (this.db !== undefined) return this.db
    this.opening ??= (async () => {
      try {
        const opened = openStore({ ...this.config, reconnect: false })
        // a connect that never answers still leaves a socket behind: close it once it does
        opened.catch(() => {})
        const db = await deadline(opened, OP_TIMEOUT_MS).catch(async (err: unknown) => {
          void opened.then(async (late) => { await late.close() }, () => {})
          throw err
        })
        this.db = db
        this.downLogged = false
        this.onChange(true)
        this.log.info('surreal connected', { url: this.config.url, ns: this.config.ns, db: this.config.db })
        return db
      } finally {
        this.opening = undefined
      }
    })()
    return await this.opening
  }

  /** Drop the session (`db`: only if it is still the current one). */
  async drop (db?: Surreal): Promise<void> {
    let closing = db
    if (db === undefined || db === this.db) {
      closing = this.db
      if (this.db !== undefined) {
        this.db = undefined
        this.onChange(false)
      }
    }
    if (closing !== undefined) await deadline(closing.close(), 2_000).catch(() => {})
  }
}
