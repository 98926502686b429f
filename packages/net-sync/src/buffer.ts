/**
 * The agent's pending-commit buffer (docs/contract.md, "Pending-commit buffer"): decisions awaiting the
 * orchestrator's `committed`, bounded by NETSYNC_BUFFER_CAP and journaled, each entry appended and
 * fsynced before the 202 is sent, so an agent killed at any moment loses nothing it answered.
 *
 * The journal is netsync's own format (netsync/buffer.py), so either implementation reads the other's:
 * `pending-commit.journal` in the journal directory, JSON lines of `{"op": "add", <entry>}` (fsynced),
 * `{"op": "done", "cid", "seq"}` (not fsynced: a lost completion only replays, and the orchestrator
 * answers that replay with the seq it stored) and `{"op": "attempt", "cid", "attempt"}` (fsynced). It is
 * rewritten with only the pending entries on open, when the buffer empties, and when more than
 * `compactAfter` lines are obsolete. A torn last line (a crash inside a write that was never fsynced,
 * so never answered) is dropped; a bad line before the last stops the open, naming the file and line.
 */
import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fromJson, isJsonInteger, toJson, type JsonObject } from './wire.js'

export const JOURNAL_NAME = 'pending-commit.journal'
export const COMPACT_AFTER = 4096
/** One decision awaiting its commit; times in Unix seconds, as in the decision frame. */
export interface Pending {
  cid: string
  key: string
  value: bigint | number
  proposer: string
  decided_at: number
  first_attempt_at: number
  attempt: number
  /** the monotonic clock (CLOCK_MONOTONIC, seconds) at the first attempt, and the boot it was read in */
  first_attempt_mono: number | null
  boot: string | null
}

/** The buffer holds `cap` entries: the agent answers 429 rather than dropping anything. */
export class BufferFullError extends Error {
  override name = 'BufferFullError'
}

/** A journal line before the last cannot be read; `path` and `line` name it. */
export class JournalCorruptError extends Error {
  override name = 'JournalCorruptError'

  constructor (readonly path: string, readonly line: number, reason: string) {
    super(`${path}:${line}: ${reason}`)
  }
}

/** A journal record's entry, checked as netsync checks it; throws naming the field. */
export function pendingFrom (rec: JsonObject): Pending {
  for (const f of ['cid', 'key', 'proposer'] as const) {
    if (typeof rec[f] !== 'string') throw new Error(`${f} must be a string, not ${toJson(rec[f] ?? null)}`)
  }
  for (const f of ['value', 'attempt'] as const) {
    if (!isJsonInteger(rec, f)) throw new Error(`${f} must be an integer, not ${toJson(rec[f] ?? null)}`)
  }
  for (const f of ['decided_at', 'first_attempt_at'] as const) {
    const v = rec[f]
    if (typeof v !== 'number' && typeof v !== 'bigint') throw new Error(`${f} must be a finite number, not ${toJson(v ?? null)}`)
  }
  const mono = rec.first_attempt_mono ?? null
  if (mono !== null && typeof mono !== 'number') throw new Error(`first_attempt_mono must be a finite number or null, not ${toJson(mono)}`)
  const boot = rec.boot ?? null
  if (boot !== null && typeof boot !== 'string') throw new Error(`boot must be a string or null, not ${toJson(boot)}`)
  return {
    cid: rec.cid as string,
    key: rec.key as string,
    value: rec.value as bigint | number,
    proposer: rec.proposer as string,
    decided_at: Number(rec.decided_at),
    first_attempt_at: Number(rec.first_attempt_at),
    attempt: Number(rec.attempt),
    first_attempt_mono: mono,
    boot
  }
}

const REQUIRED = ['cid', 'key', 'value', 'proposer', 'decided_at', 'first_attempt_at', 'attempt']
const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true })

function line (record: object): Uint8Array {
  return utf8.encode(toJson(record) + '\n')
}

function addLine (e: Pending): Uint8Array {
  return line({ op: 'add', ...e })
}

type Rec = { op: 'add', entry: Pending } | { op: 'done', cid: string, seq: number } | { op: 'attempt', cid: string, attempt: number }

function decodeLine (raw: Uint8Array): Rec {
  const rec = fromJson(utf8Strict.decode(raw))
  if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) throw new Error('not a JSON object')
  if (rec.op === 'add') {
    const missing = REQUIRED.filter((f) => !(f in rec))
    if (missing.length > 0) throw new Error(`add without ${missing.join(', ')}`)
    return { op: 'add', entry: pendingFrom(rec) }
  }
  if (rec.op === 'done' || rec.op === 'attempt') {
    const number = rec.op === 'done' ? 'seq' : 'attempt'
    if (typeof rec.cid !== 'string' || !isJsonInteger(rec, number)) {
      throw new Error(`${rec.op} needs a string cid and an integer ${number}`)
    }
    return rec.op === 'done'
      ? { op: 'done', cid: rec.cid, seq: Number(rec.seq) }
      : { op: 'attempt', cid: rec.cid, attempt: Number(rec.attempt) }
  }
  throw new Error(`unknown op ${toJson(rec.op ?? null)}`)
}

async function fsyncDir (path: string): Promise<void> {
  const fh = await open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

export interface BufferOptions {
  /** rewrite the journal once more lines than this are obsolete */
  compactAfter?: number
  /** false only for a planted bug: appends reach the page cache, never the disk */
  fsync?: boolean
}

/** A slot held for one intent from before its quorum to its answer (see PendingCommitBuffer.reserve). */
export interface Reservation {
  /** journal `entry` in this slot, durable when it resolves; the slot is then the entry's */
  append: (entry: Pending) => Promise<void>
  /** give the slot back (the intent committed directly or was aborted); idempotent */
  release: () => void
}

export class PendingCommitBuffer {
  readonly path: string
  private readonly pending = new Map<string, Pending>() // insertion order is decision order
  private file: FileHandle | undefined
  private size = 0
  private obsolete = 0
  private reserved = 0
  private io: Promise<unknown> = Promise.resolve()

  private constructor (readonly dir: string, readonly cap: number, private readonly options: Required<BufferOptions>) {
    this.path = join(dir, JOURNAL_NAME)
  }

  /** Open (or create) the journal in `dir` and read it back: the entries still pending, in order. */
  static async open (dir: string, cap: number, options: BufferOptions = {}): Promise<PendingCommitBuffer> {
    if (!Number.isInteger(cap) || cap < 1) throw new RangeError(`cap must be at least 1, not ${cap}`)
    const buffer = new PendingCommitBuffer(dir, cap, { compactAfter: options.compactAfter ?? COMPACT_AFTER, fsync: options.fsync ?? true })
    const made = await mkdir(dir, { recursive: true })
    if (made !== undefined) await fsyncDir(dirname(made))
    await buffer.replay()
    // Rewriting at once drops a torn tail (appends must not follow it) and creates the file if missing.
    await buffer.rewrite()
    return buffer
  }

  // -- reading -----------------------------------------------------------------------------------

  get length (): number {
    return this.pending.size
  }

  head (): Pending | undefined {
    return this.pending.values().next().value
  }

  entries (): Pending[] {
    return [...this.pending.values()]
  }

  contains (cid: string): boolean {
    return this.pending.has(cid)
  }

  /** Entries plus slots held by intents still deciding: what the cap is checked against. */
  get depth (): number {
    return this.pending.size + this.reserved
  }

  // -- admission (the 429) -----------------------------------------------------------------------

  /**
   * A slot for an intent about to seek its quorum, or undefined when the buffer is full: the agent then
   * answers 429 before any quorum is sought. Held slots count against the cap, as netsync's do, so a
   * decision whose commit fails always finds room and no 429 comes after a side effect.
   */
  reserve (): Reservation | undefined {
    if (this.depth >= this.cap) return undefined
    this.reserved++
    let held = true
    const release = (): void => {
      if (held) {
        held = false
        this.reserved--
      }
    }
    return {
      append: async (entry) => {
        if (!held) throw new Error('the reservation was released')
        try { // the slot is held until the entry counts instead: no other intent takes it meanwhile
          await this.appendMany([entry])
        } finally {
          release()
        }
      },
      release
    }
  }

  // -- writing -----------------------------------------------------------------------------------

  /** Journal `entry` behind the others; durable (fsynced) when this resolves. */
  async append (entry: Pending): Promise<void> {
    await this.appendMany([entry])
  }

  /** Group commit: all entries or none (BufferFullError, Error), with one fsync for all. */
  async appendMany (batch: Pending[]): Promise<void> {
    if (batch.length === 0) return
    await this.serial(async () => {
      const cids = batch.map((e) => e.cid)
      const taken = cids.find((c) => this.pending.has(c))
      if (taken !== undefined || new Set(cids).size !== cids.length) {
        throw new Error(`cid already pending: ${taken ?? 'repeated in the batch'}`)
      }
      if (this.pending.size + batch.length > this.cap) {
        throw new BufferFullError(`${this.pending.size} of ${this.cap} pending, ${batch.length} more do not fit`)
      }
      for (const e of batch) pendingFrom(e as unknown as JsonObject) // a bad entry today would fail tomorrow's open
      await this.write(concat(batch.map(addLine)), true)
      for (const e of batch) this.pending.set(e.cid, { ...e }) // visible only once durable
    })
  }

  /** The orchestrator answered `committed` with `seq`: the entry leaves the buffer. */
  async complete (cid: string, seq: number): Promise<void> {
    await this.serial(async () => {
      if (!this.pending.has(cid)) throw new RangeError(`cid ${cid} is not pending`)
      if (!Number.isSafeInteger(seq)) throw new TypeError(`seq must be an integer, not ${seq}`)
      await this.write(line({ op: 'done', cid, seq }), false)
      this.pending.delete(cid)
      this.obsolete += 2 // the add and the done
      if (this.pending.size === 0 || this.obsolete > this.options.compactAfter) await this.rewrite()
    })
  }

  /** Count one more commit attempt for `cid`, fsynced (a replay never reuses a number sent); the new entry. */
  async bumpAttempt (cid: string): Promise<Pending> {
    return await this.serial(async () => {
      const e = this.pending.get(cid)
      if (e === undefined) throw new RangeError(`cid ${cid} is not pending`)
      const bumped = { ...e, attempt: e.attempt + 1 }
      await this.write(line({ op: 'attempt', cid, attempt: bumped.attempt }), true)
      this.pending.set(cid, bumped)
      this.obsolete += 1
      if (this.obsolete > this.options.compactAfter) await this.rewrite()
      return bumped
    })
  }

  async close (): Promise<void> {
    await this.serial(async () => {
      await this.file?.close()
      this.file = undefined
    })
  }

  // -- journal -----------------------------------------------------------------------------------

  /** Every change of the journal, one at a time, in call order. */
  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.io.then(fn, fn)
    this.io = run.catch(() => {})
    return await run
  }

  private async replay (): Promise<void> {
    let data: Uint8Array
    try {
      data = await readFile(this.path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    const lines: Uint8Array[] = []
    let start = 0
    for (let i = 0; i < data.length; i++) {
      if (data[i] === 0x0a) {
        lines.push(data.subarray(start, i))
        start = i + 1
      }
    }
    if (start < data.length) lines.push(data.subarray(start))
    for (const [i, raw] of lines.entries()) {
      const number = i + 1
      let rec: Rec
      try {
        rec = decodeLine(raw)
      } catch (err) {
        if (number === lines.length) break // torn by a crash inside a write never fsynced, so never answered
        throw new JournalCorruptError(this.path, number, (err as Error).message)
      }
      const cid = rec.op === 'add' ? rec.entry.cid : rec.cid
      if (rec.op === 'add') {
        if (this.pending.has(cid)) throw new JournalCorruptError(this.path, number, `cid ${toJson(cid)} added twice`)
        this.pending.set(cid, rec.entry)
      } else if (!this.pending.has(cid)) {
        throw new JournalCorruptError(this.path, number, `${rec.op} for cid ${toJson(cid)}, which is not pending`)
      } else if (rec.op === 'done') {
        this.pending.delete(cid)
      } else {
        this.pending.set(cid, { ...this.pending.get(cid)!, attempt: rec.attempt })
      }
    }
    // More entries than the cap (it was lowered across a restart) are all kept: each was answered 202;
    // appends fail with BufferFullError until the buffer drains below the cap.
  }

  /** Atomically replace the journal by one holding only the pending entries. */
  private async rewrite (): Promise<void> {
    const content = concat([...this.pending.values()].map(addLine))
    const tmp = `${this.path}.tmp`
    const fh = await open(tmp, 'w')
    try {
      await fh.write(content)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, this.path)
    await this.file?.close() // appends must never go to the replaced file
    this.file = await open(this.path, 'a')
    this.size = content.length
    this.obsolete = 0
    await fsyncDir(this.dir)
  }

  private async write (data: Uint8Array, sync: boolean): Promise<void> {
    const file = this.file
    if (file === undefined) throw new Error('the buffer is closed, or its journal failed a write; reopen it')
    try {
      let at = 0
      while (at < data.length) at += (await file.write(data, at)).bytesWritten
      if (sync && this.options.fsync) await file.sync()
    } catch (err) {
      try { // leave no partial line: appends after it would make it a corrupt middle line
        await file.truncate(this.size)
      } catch {
        await file.close().catch(() => {})
        this.file = undefined
      }
      throw err
    }
    this.size += data.length
  }
}

function concat (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}
