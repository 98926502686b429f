/**
 * The agent's answers log (answers.ts): back after a reopen, bounded in memory and on disk, a torn last
 * line dropped and cut off, a damaged earlier line naming file and line, and netsync's AnswerLog reading
 * this one's files and the other way round (an agent's volume survives a switch of implementation).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ANSWERS_CURRENT, ANSWERS_OLD, AnswerLog, JournalCorruptError } from '../src/index.js'
import { python } from './helpers.js'

const dir = (): string => mkdtempSync(join(tmpdir(), 'net-sync-answers-'))

test('answers come back after a reopen, the latest per cid', () => {
  const d = dir()
  const log = AnswerLog.open(d, 10)
  log.put('a', 409, { cid: 'a', outcome: 'aborted', reason: 'no quorum' })
  log.put('b', 202, { cid: 'b', outcome: 'pending-commit', quorum_ms: 3.5 })
  log.put('b', 200, { cid: 'b', outcome: 'committed', stream_seq: 7, quorum_ms: 3.5 })
  log.close() // what a SIGKILL leaves is the same: each line was written before put returned
  const again = AnswerLog.open(d, 10)
  assert.deepEqual(again.get('a'), { status: 409, body: { cid: 'a', outcome: 'aborted', reason: 'no quorum' } })
  assert.deepEqual(again.get('b'), { status: 200, body: { cid: 'b', outcome: 'committed', stream_seq: 7, quorum_ms: 3.5 } })
  assert.equal(again.get('c'), undefined)
  assert.equal(again.count, 2)
})

test('the disk holds at most twice the limit, and the latest answers survive', () => {
  const d = dir()
  const log = AnswerLog.open(d, 5)
  for (let i = 0; i < 23; i++) log.put(`c${i}`, 200, { cid: `c${i}`, outcome: 'committed', stream_seq: i })
  log.close()
  const lines = [ANSWERS_CURRENT, ANSWERS_OLD].map((f) => readFileSync(join(d, f), 'utf8').split('\n').length - 1)
  assert.deepEqual(lines, [3, 5])
  const again = AnswerLog.open(d, 5)
  assert.equal(again.count, 5)
  assert.deepEqual([18, 19, 20, 21, 22].map((i) => again.get(`c${i}`)?.body.stream_seq), [18, 19, 20, 21, 22])
  assert.equal(again.get('c17'), undefined)
})

test('a torn last line is dropped and cut off; a bad line before it names file and line', () => {
  const d = dir()
  const log = AnswerLog.open(d, 10)
  log.put('a', 200, { cid: 'a', outcome: 'committed', stream_seq: 1 })
  log.close()
  const path = join(d, ANSWERS_CURRENT)
  appendFileSync(path, '{"cid": "b", "sta') // killed in the middle of a write
  const reopened = AnswerLog.open(d, 10)
  assert.equal(reopened.get('b'), undefined)
  reopened.put('c', 200, { cid: 'c', outcome: 'committed', stream_seq: 2 })
  reopened.close()
  assert.deepEqual(AnswerLog.open(d, 10).get('c'), { status: 200, body: { cid: 'c', outcome: 'committed', stream_seq: 2 } })
  // a whole last line that cannot be read was torn too (never answered); one before it was damaged
  writeFileSync(path, '{"cid": "a", "status": 200, "body": {}}\n{"cid": "b", "status": 2')
  assert.equal(AnswerLog.open(d, 10).count, 1)
  writeFileSync(path, '{"cid": "a", "status": 200, "body": {}}\n{"cid": 5, "status": 200, "body": {}}\n{"cid": "c", "status": 200, "body": {}}\n')
  assert.throws(() => AnswerLog.open(d, 10), (err: unknown) =>
    err instanceof JournalCorruptError && err.path === path && err.line === 2 && /cid must be a string/.test(err.message))
})

test("netsync's AnswerLog reads these files, and this one reads netsync's", () => {
  const ours = dir()
  const log = AnswerLog.open(ours, 10)
  log.put('t1', 200, { cid: 't1', outcome: 'committed', stream_seq: 9007199254740993n, quorum_ms: 1.25 })
  log.put('t2', 429, { cid: 't2', outcome: 'rejected', reason: 'buffer-full' })
  log.close()
  const theirs = dir()
  const read = JSON.parse(python(`
import json, sys
from netsync.answers import AnswerLog
a = json.loads(sys.argv[1])
log = AnswerLog(a["ours"], 10)
out = {c: log.get(c) for c in ("t1", "t2")}
mine = AnswerLog(a["theirs"], 10)
mine.put("p1", 202, {"cid": "p1", "outcome": "pending-commit", "quorum_ms": 4.5})
mine.put("p2", 409, {"cid": "p2", "outcome": "aborted", "reason": "no quorum within 80 ms (1/2 agreed)"})
mine.close()
print(json.dumps({c: [v[0], v[1]] for c, v in out.items()} | {"seq": str(out["t1"][1]["stream_seq"])}))
`, { ours, theirs })) as Record<string, unknown>
  assert.deepEqual(read.t2, [429, { cid: 't2', outcome: 'rejected', reason: 'buffer-full' }])
  assert.equal(read.seq, '9007199254740993') // exactly, past 2^53
  const back = AnswerLog.open(theirs, 10)
  assert.deepEqual(back.get('p1'), { status: 202, body: { cid: 'p1', outcome: 'pending-commit', quorum_ms: 4.5 } })
  assert.deepEqual(back.get('p2'), { status: 409, body: { cid: 'p2', outcome: 'aborted', reason: 'no quorum within 80 ms (1/2 agreed)' } })
})
