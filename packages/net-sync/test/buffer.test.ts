import { test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  BufferFullError, firstAttemptAge, JOURNAL_NAME, JournalCorruptError, monotonicNow, PendingCommitBuffer, thisBoot,
  UNTRUSTED_AGE_S, type Pending
} from '../src/index.js'
import { python } from './helpers.js'

const dir = (): string => mkdtempSync(join(tmpdir(), 'net-sync-buffer-'))

function entry (cid: string, over: Partial<Pending> = {}): Pending {
  const now = Date.now() / 1000
  return {
    cid, key: `k-${cid}`, value: 1, proposer: 'agent-1', decided_at: now, first_attempt_at: now, attempt: 1,
    first_attempt_mono: monotonicNow(), boot: thisBoot(), ...over
  }
}

test('an appended entry is in the journal when append resolves, and a reopen finds it, in order', async () => {
  const d = dir()
  const b = await PendingCommitBuffer.open(d, 8)
  await b.append(entry('a', { value: 9223372036854775807n, key: 'ключ ☀' }))
  await b.append(entry('b'))
  const lines = readFileSync(join(d, JOURNAL_NAME), 'utf8').trim().split('\n')
  assert.equal(lines.length, 2)
  assert.match(lines[0]!, /^\{"op":"add","cid":"a",.*"value":9223372036854775807,/)
  // no close: as after a kill
  const again = await PendingCommitBuffer.open(d, 8)
  assert.deepEqual(again.entries().map((e) => [e.cid, e.key, e.value]), [['a', 'ключ ☀', 9223372036854775807n], ['b', 'k-b', 1]])
  assert.equal(again.head()?.cid, 'a')
  assert.ok(again.contains('b'))
})

test('the cap: a full buffer gives no slot (the 429, before any quorum); held slots count against it', async () => {
  const b = await PendingCommitBuffer.open(dir(), 2)
  const r1 = b.reserve()
  const r2 = b.reserve()
  assert.ok(r1 !== undefined && r2 !== undefined)
  assert.equal(b.reserve(), undefined, 'two intents deciding fill a buffer of 2')
  r1.release()
  r1.release() // idempotent
  assert.equal(b.depth, 1)
  await r2.append(entry('x')) // the decision's commit failed: journaled in its slot
  assert.equal(b.length, 1)
  const r3 = b.reserve()
  assert.ok(r3 !== undefined)
  assert.equal(b.reserve(), undefined)
  r3.release()
  await b.append(entry('y'))
  await assert.rejects(b.append(entry('z')), (e: unknown) => e instanceof BufferFullError && /2 of 2 pending, 1 more do not fit/.test(e.message))
  assert.deepEqual(b.entries().map((e) => e.cid), ['x', 'y'])
})

test('a slot stays held while its entry is being journaled: no other intent takes it meanwhile', async () => {
  const b = await PendingCommitBuffer.open(dir(), 1)
  const r = b.reserve()
  assert.ok(r !== undefined)
  const appending = r.append(entry('a'))
  assert.equal(b.reserve(), undefined, 'during the append (before its fsync)')
  await appending
  assert.equal(b.reserve(), undefined, 'after it: the entry holds the place')
  assert.equal(b.depth, 1)
  await assert.rejects(r.append(entry('b')), /the reservation was released/)
})

test('a batch is journaled whole or not at all; a cid pending twice is refused', async () => {
  const d = dir()
  const b = await PendingCommitBuffer.open(d, 3)
  await b.append(entry('a'))
  await assert.rejects(b.appendMany([entry('b'), entry('c'), entry('d')]), BufferFullError)
  await assert.rejects(b.append(entry('a')), /cid already pending: a/)
  await assert.rejects(b.appendMany([entry('q'), entry('q')]), /repeated in the batch/)
  await b.appendMany([entry('b'), entry('c')])
  assert.deepEqual((await PendingCommitBuffer.open(d, 3)).entries().map((e) => e.cid), ['a', 'b', 'c'])
})

test('completions and attempts survive a reopen; an emptied buffer leaves an empty journal', async () => {
  const d = dir()
  const b = await PendingCommitBuffer.open(d, 8)
  await b.appendMany([entry('a'), entry('b'), entry('c')])
  assert.equal((await b.bumpAttempt('b')).attempt, 2)
  assert.equal((await b.bumpAttempt('b')).attempt, 3)
  await b.complete('a', 41)
  const again = await PendingCommitBuffer.open(d, 8)
  assert.deepEqual(again.entries().map((e) => [e.cid, e.attempt]), [['b', 3], ['c', 1]])
  await assert.rejects(again.complete('a', 41), /cid a is not pending/)
  await again.complete('b', 42)
  await again.complete('c', 43)
  assert.equal(again.length, 0)
  assert.equal(statSync(join(d, JOURNAL_NAME)).size, 0)
})

test('many appends at once are journaled one after another, in call order', async () => {
  const d = dir()
  const b = await PendingCommitBuffer.open(d, 100)
  const cids = Array.from({ length: 40 }, (_, i) => `c${i}`)
  await Promise.all(cids.map(async (c) => await b.append(entry(c))))
  assert.deepEqual((await PendingCommitBuffer.open(d, 100)).entries().map((e) => e.cid), cids)
})

test('a torn last line is dropped; a bad line before it stops the open, naming file and line', async () => {
  const d = dir()
  const b = await PendingCommitBuffer.open(d, 8)
  await b.append(entry('a'))
  const path = join(d, JOURNAL_NAME)
  appendFileSync(path, '{"op":"add","cid":"b","ke')
  assert.deepEqual((await PendingCommitBuffer.open(d, 8)).entries().map((e) => e.cid), ['a'])
  assert.match(readFileSync(path, 'utf8'), /^\{"op":"add","cid":"a".*\}\n$/, 'the torn tail is gone from the file')
  const good = readFileSync(path, 'utf8')
  for (const [bad, why] of [
    ['{"op":"add","cid":"b"}', /add without key, value, proposer, decided_at, first_attempt_at, attempt/],
    ['{"op":"done","cid":"zz","seq":1}', /done for cid "zz", which is not pending/],
    ['{"op":"add","cid":"c","key":"k","value":1.5,"proposer":"p","decided_at":1,"first_attempt_at":1,"attempt":1}', /value must be an integer, not 1.5/],
    ['{"op":"shred"}', /unknown op "shred"/],
    ['not json', /JSON/]
  ] as const) {
    writeFileSync(path, `${good}${bad}\n${good}`)
    await assert.rejects(PendingCommitBuffer.open(d, 8), (e: unknown) =>
      e instanceof JournalCorruptError && e.line === 2 && e.path === path && e.message.startsWith(`${path}:2: `) && why.test(e.message))
  }
})

test('a cap lowered across a restart keeps every entry; appends wait until it drains below', async () => {
  const d = dir()
  const b = await PendingCommitBuffer.open(d, 4)
  await b.appendMany([entry('a'), entry('b'), entry('c')])
  const small = await PendingCommitBuffer.open(d, 2)
  assert.equal(small.length, 3)
  assert.equal(small.reserve(), undefined)
  await assert.rejects(small.append(entry('d')), BufferFullError)
  await assert.rejects(PendingCommitBuffer.open(dir(), 0), /cap must be at least 1, not 0/)
})

test("netsync reads our journal and we read netsync's: one format for both implementations", async () => {
  const ours = dir()
  const b = await PendingCommitBuffer.open(ours, 8)
  await b.appendMany([entry('a', { value: -9223372036854775808n }), entry('b', { first_attempt_mono: null, boot: null }), entry('c')])
  await b.bumpAttempt('c')
  await b.complete('a', 7)
  const theirs = dir()
  const out = JSON.parse(python(`
import json, sys, time
from netsync.buffer import Pending, PendingCommitBuffer, this_boot
args = json.loads(sys.argv[1])
read = PendingCommitBuffer(args["ours"], 8)
seen = [[e.cid, e.value, e.attempt, e.first_attempt_mono is None, e.boot] for e in read.entries()]
now = time.time()
buf = PendingCommitBuffer(args["theirs"], 8)
buf.append_many([Pending("x", "k-x", 12, "agent-2", now, now, 1, time.monotonic(), this_boot()),
                 Pending("y", "k-y", 2**63 - 1, "agent-2", now, now, 1, None, None),
                 Pending("z", "k-z", 3, "agent-2", now, now, 1, time.monotonic(), this_boot())])
buf.bump_attempt("y")
buf.complete("x", 99)
print(json.dumps({"seen": [s[:4] + [s[4] == this_boot() if s[4] else None] for s in seen]}))
`, { ours, theirs })) as { seen: unknown[] }
  assert.deepEqual(out.seen, [['b', 1, 1, true, null], ['c', 1, 2, false, true]])
  const read = await PendingCommitBuffer.open(theirs, 8)
  assert.deepEqual(read.entries().map((e) => [e.cid, e.value, e.attempt, e.first_attempt_mono === null]),
    [['y', 9223372036854775807n, 2, true], ['z', 3, 1, false]])
  assert.equal(read.entries()[1]?.boot, thisBoot())
})

test("a replay's age: the monotonic clock within this boot (Python's time.monotonic), else ten years", () => {
  const py = Number(python('import time; print(time.monotonic())'))
  assert.ok(Math.abs(py - monotonicNow()) < 5, `CLOCK_MONOTONIC: python ${py}, node ${monotonicNow()}`)
  const boot = thisBoot()
  assert.match(boot, /^[0-9a-f-]{36}$/)
  const age = firstAttemptAge(entry('a', { first_attempt_mono: monotonicNow() - 30, first_attempt_at: Date.now() / 1000 }), boot)
  assert.ok(age >= 30 && age < 31, `age ${age}`)
  // the wall clock stepped back by an hour since: the monotonic reading still gives 30 s, never less
  const stepped = firstAttemptAge(entry('a', { first_attempt_mono: monotonicNow() - 30, first_attempt_at: Date.now() / 1000 + 3600 }), boot)
  assert.ok(stepped >= 30 && stepped < 31)
  // a suspended host: the wall clock saw more time than the monotonic clock; the larger counts
  const suspended = firstAttemptAge(entry('a', { first_attempt_mono: monotonicNow() - 1, first_attempt_at: Date.now() / 1000 - 100 }), boot)
  assert.ok(suspended >= 100 && suspended < 101)
  assert.equal(firstAttemptAge(entry('a', { boot: 'another-boot' }), boot), UNTRUSTED_AGE_S)
  assert.equal(firstAttemptAge(entry('a', { first_attempt_mono: null }), boot), UNTRUSTED_AGE_S)
  assert.equal(firstAttemptAge(entry('a', { first_attempt_mono: monotonicNow() + 100 }), boot), UNTRUSTED_AGE_S)
})
