/**
 * The agent's answers by cid, kept across a restart (docs/contract.md, "Agent HTTP API"): a repeated
 * `POST /intents` gets the answer it got before, never a second intent, also after the agent was killed.
 *
 * netsync's own files and format (netsync/answers.py), so either implementation reads the other's volume:
 * JSON lines `{"cid", "status", "body"}` in `answers.log` beside the journal, which becomes `answers.old`
 * once it holds `limit` lines; the last `limit` answers are kept in memory. Each line is written before
 * the answer is sent, whole or not at all, without fsync (a killed process keeps the page cache; a power
 * loss may forget the latest). On open a torn last line is dropped and cut off; any other line that
 * cannot be read stops the open with a JournalCorruptError naming the file and line.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { JournalCorruptError } from './buffer.js'
import { fromJson, isJsonInteger, toJson, type JsonObject } from './wire.js'

export const ANSWERS_CURRENT = 'answers.log'
export const ANSWERS_OLD = 'answers.old'
/** Answers kept (docs/contract.md, "Resources"). */
export const ANSWERS_KEPT = 50_000

/** One answer as the agent sent it: the HTTP status and the JSON body. */
export interface Answer { status: number, body: JsonObject }

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true })

function decode (raw: Uint8Array): { cid: string } & Answer {
  const rec = fromJson(utf8Strict.decode(raw))
  if (rec === null || typeof rec !== 'object' || Array.isArray(rec) || !('cid' in rec && 'status' in rec && 'body' in rec)) {
    throw new Error('not an object with cid, status and body')
  }
  const body = rec.body
  if (typeof rec.cid !== 'string' || !isJsonInteger(rec, 'status') || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new Error('cid must be a string, status an integer, body an object')
  }
  return { cid: rec.cid, status: Number(rec.status), body: body as JsonObject }
}

function errno (err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code
}

export class AnswerLog {
  /** cid -> the JSON of [status, body]: a string is a fraction of a decoded object's memory */
  private readonly answers = new Map<string, string>()
  private fd: number
  private lines = 0
  private size = 0 // bytes of whole lines in the current file
  private torn = false

  private constructor (readonly dir: string, readonly limit: number) {
    this.load(join(dir, ANSWERS_OLD))
    const current = join(dir, ANSWERS_CURRENT)
    const [lines, size, fileSize] = this.load(current)
    this.lines = lines
    this.size = size
    this.fd = openSync(current, 'a')
    this.torn = fileSize !== size
    if (this.torn) this.mend() // appends must never follow a torn line
  }

  /** Open (or create) the answers in `dir`, reading back what is there. Synchronous: done once at start. */
  static open (dir: string, limit = ANSWERS_KEPT): AnswerLog {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be at least 1, not ${limit}`)
    mkdirSync(dir, { recursive: true })
    return new AnswerLog(dir, limit)
  }

  /** Read `path` into memory: [its whole lines, their bytes, the file's bytes]. */
  private load (path: string): [number, number, number] {
    let data: Buffer
    try {
      data = readFileSync(path)
    } catch (err) {
      if (errno(err) === 'ENOENT') return [0, 0, 0]
      throw err
    }
    // Only a line ending in a newline is whole: the next line would be written onto an unended one.
    const end = data.lastIndexOf(0x0a) + 1
    const lines: Buffer[] = []
    for (let at = 0; at < end;) {
      const nl = data.indexOf(0x0a, at)
      lines.push(data.subarray(at, nl))
      at = nl + 1
    }
    for (const [i, raw] of lines.entries()) {
      let answer: { cid: string } & Answer
      try {
        answer = decode(raw)
      } catch (err) {
        if (i === lines.length - 1 && end === data.length) { // torn by a kill inside its write: never answered
          return [i, end - raw.length - 1, data.length]
        }
        throw new JournalCorruptError(path, i + 1, (err as Error).message)
      }
      this.keep(answer.cid, answer.status, answer.body)
    }
    return [lines.length, end, data.length]
  }

  private keep (cid: string, status: number, body: JsonObject): void {
    this.answers.delete(cid) // the latest answer moves to the end: the oldest is forgotten first
    this.answers.set(cid, toJson([status, body]))
    if (this.answers.size > this.limit) this.answers.delete(this.answers.keys().next().value as string)
  }

  get (cid: string): Answer | undefined {
    const kept = this.answers.get(cid)
    if (kept === undefined) return undefined
    const [status, body] = fromJson(kept) as [number, JsonObject]
    return { status, body }
  }

  /** How many answers are kept. */
  get count (): number {
    return this.answers.size
  }

  /** Remember `cid`'s answer, in the file before this returns (one write, no fsync); throws when the write fails. */
  put (cid: string, status: number, body: JsonObject): void {
    const data = utf8.encode(toJson({ cid, status, body }) + '\n')
    if (this.torn) this.mend()
    if (this.lines >= this.limit) this.rotate()
    this.append(data)
    this.lines++
    this.keep(cid, status, body)
  }

  /** Write `data` whole, or leave the file as it was and throw. */
  private append (data: Uint8Array): void {
    try {
      let at = 0
      while (at < data.length) at += writeSync(this.fd, data, at) // a short write (a disk filling up) goes on
    } catch (err) {
      this.torn = true
      try {
        this.mend()
      } catch {} // tried again before the next line
      throw err
    }
    this.size += data.length
  }

  /** Cut the current file back to its whole lines. */
  private mend (): void {
    ftruncateSync(this.fd, this.size)
    this.torn = false
  }

  private rotate (): void {
    closeSync(this.fd)
    renameSync(join(this.dir, ANSWERS_CURRENT), join(this.dir, ANSWERS_OLD))
    this.fd = openSync(join(this.dir, ANSWERS_CURRENT), 'a')
    this.lines = 0
    this.size = 0
  }

  close (): void {
    closeSync(this.fd)
  }
}
