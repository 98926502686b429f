/**
 * Logs (docs/contract.md, "Logs"): one JSON object per line, `t` (Unix seconds), `level`, `node`, `msg`,
 * and `cid` whenever the line concerns an intent, so a cid can be followed across every node.
 */
import { toJson } from './wire.js'

export type Level = 'info' | 'warning' | 'error'
export type Fields = Record<string, unknown> & { cid?: string | undefined }

export class Log {
  /** `write` gets each line, newline included (stdout by default). */
  constructor (readonly node: string, private readonly write: (line: string) => void = (line) => { process.stdout.write(line) }) {}

  private emit (level: Level, msg: string, fields: Fields): void {
    const { cid, ...rest } = fields
    const rec: Record<string, unknown> = { t: Math.round(Date.now() * 1000) / 1e6, level, node: this.node, msg }
    if (cid !== undefined) rec.cid = cid
    Object.assign(rec, rest)
    let line: string
    try {
      line = toJson(rec)
    } catch { // a field JSON cannot hold (a cycle): its text, as netsync's default=str does
      line = toJson({ ...rec, ...Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, String(v)])) })
    }
    this.write(line + '\n')
  }

  info (msg: string, fields: Fields = {}): void { this.emit('info', msg, fields) }
  warning (msg: string, fields: Fields = {}): void { this.emit('warning', msg, fields) }
  error (msg: string, fields: Fields = {}): void { this.emit('error', msg, fields) }
}
