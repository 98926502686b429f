/**
 * Planted bugs (docs/contract.md, "Planted bugs"), after netsync/buggify.py: `NETSYNC_BUGGIFY=name[,name]`
 * makes a role break one promise of the contract per flag, as a realistic mistake would, so the harness can
 * show that the scenario aimed at that promise catches it. Off by default. The names and the announce live
 * here; each mistake sits at the line it concerns, guarded by `bugs.has('name')`.
 */
import type { Log } from './log.js'

export const BUGGIFY_ENV = 'NETSYNC_BUGGIFY'

export interface Flag {
  role: 'agent' | 'orchestrator' | 'projector'
  /** what the code does wrong */
  mistake: string
  /** the promise of docs/contract.md it breaks */
  promise: string
}

/** The flags this implementation has: netsync's names, for the promises both share. */
export const FLAGS: Readonly<Record<string, Flag>> = {
  'no-dedup-header': {
    role: 'orchestrator',
    mistake: 'publishes without the Nats-Msg-Id header',
    promise: 'Commitment: JetStream drops a replay inside the duplicate window'
  },
  'no-window-lookup': {
    role: 'orchestrator',
    mistake: 'republishes a replay past the duplicate window without looking it up in the stream',
    promise: 'Exactly once, also past the duplicate window'
  },
  'window-age-at-send': {
    role: 'orchestrator',
    mistake: "judges a replay inside the duplicate window by its age when it publishes, not when it lands: the decision's wait for NATS and the publish's own flight are not counted",
    promise: 'Exactly once, also past the duplicate window, when the link to NATS is slow'
  },
  'stall-is-absent': {
    role: 'orchestrator',
    mistake: "takes a stream lookup that stopped answering half-way for 'not in the stream'",
    promise: 'Exactly once, also past the duplicate window, when NATS stalls during a lookup'
  },
  'trust-agent-clock': {
    role: 'orchestrator',
    mistake: "dates a replay by the agent's first_attempt_at (the agent's clock) instead of its age",
    promise: "Exactly once, also past the duplicate window, whatever the agent's clock says"
  },
  'reconnect-gives-up': {
    role: 'orchestrator',
    mistake: 'bounds its reconnects to NATS (about 15 s of refused attempts) and then stays disconnected',
    promise: 'Commitment: the orchestrator resumes by itself after a NATS outage of any length'
  },
  'buffer-unbounded': {
    role: 'agent',
    mistake: 'never answers 429: the buffer grows past NETSYNC_BUFFER_CAP',
    promise: 'Pending-commit buffer: bounded by NETSYNC_BUFFER_CAP'
  },
  'cap-off-by-one': {
    role: 'agent',
    mistake: 'admits a decision while the buffer already holds NETSYNC_BUFFER_CAP (checks depth > cap)',
    promise: 'Pending-commit buffer: bounded by NETSYNC_BUFFER_CAP'
  },
  'reject-after-commit': {
    role: 'agent',
    mistake: 'with a full buffer, seeks a quorum and tries a direct commit, and answers 429 only when that fails',
    promise: 'Pending-commit buffer: a 429 comes before any quorum is sought'
  },
  'journal-late': {
    role: 'agent',
    mistake: 'answers 202 at once and journals each decision two seconds after its answer',
    promise: 'Pending-commit buffer: journaled and fsynced before the 202'
  },
  'journal-no-fsync': {
    role: 'agent',
    mistake: 'writes each decision to its journal before the 202 but never fsyncs it (the page cache only)',
    promise: 'Pending-commit buffer: journaled and fsynced before the 202'
  },
  'journal-after-answer': {
    role: 'agent',
    mistake: 'sends the 202 first and journals (and fsyncs) the decision right after it',
    promise: 'Pending-commit buffer: journaled and fsynced before the 202'
  },
  'forget-first-attempt': {
    role: 'agent',
    mistake: "after a restart, sends replays with first_attempt_at counted from the process's start",
    promise: 'Exactly once past the duplicate window, across a restart of the agent'
  },
  'trust-journal-clock': {
    role: 'agent',
    mistake: "after a restart, ages a replay by the journal's wall-clock time alone (now - first_attempt_at)",
    promise: "Exactly once past the duplicate window, across a restart with the agent's clock stepped back"
  },
  'forget-answers': {
    role: 'agent',
    mistake: 'keeps its answers in memory only',
    promise: 'Agent HTTP API: a repeated POST gets its first answer, also after a restart'
  },
  'keep-every-intent': {
    role: 'agent',
    mistake: 'keeps a debug record of every intent it decided (about 4 KiB each) in a list never trimmed',
    promise: "Resources: under steady load an agent's memory stays flat"
  },
  'cid-dollar-anchor': {
    role: 'agent',
    mistake: "checks a cid with a pattern whose $ also matches before a trailing newline, so 'abc\\n' is taken; the orchestrator refuses its commit and the agent replays it for ever",
    promise: 'Agent HTTP API: a cid is 1 to 64 of [A-Za-z0-9._:-], the whole string'
  },
  'duplicate-rows': {
    role: 'projector',
    mistake: 'CREATEs a row with a fresh id instead of UPSERTing sentiment:<cid>',
    promise: 'Projector: a redelivery rewrites the same row'
  },
  'store-failure-refused': {
    role: 'projector',
    mistake: "counts SurrealDB's answer that its store failed (a disk's EIO) as a refusal of the statement",
    promise: 'Dead letters: an outage of the store, however long, never dead-letters an intent'
  },
  'wrong-value': {
    role: 'projector',
    mistake: "writes each key's last value in a fetched batch into every row of that key in the batch",
    promise: "Projector: the row holds the message's key and value"
  },
  'ack-before-write': {
    role: 'projector',
    mistake: 'acks a message before its SurrealDB write',
    promise: 'Projector: ack only after the write succeeded'
  }
}

/** A flag's record of `keep-every-intent`: about 4 KiB per decided intent. */
export const KEPT_RECORD = 4096

/** Say loudly which planted bugs this process runs with: each flag of `role` at error level and on stderr. */
export function announce (bugs: ReadonlySet<string>, role: Flag['role'], log: Log): void {
  for (const name of [...bugs].sort()) {
    const flag = FLAGS[name]
    if (flag === undefined || flag.role !== role) continue
    log.error('BUGGIFY: a planted bug is on', { flag: name, mistake: flag.mistake, breaks: flag.promise })
    process.stderr.write(`net-sync ${role}: BUGGIFY ${name} is ON: ${flag.mistake}\n`)
  }
}
