"""Planted bugs, after FoundationDB's "buggify": `NETSYNC_BUGGIFY=name[,name]` makes netsync break
one promise of docs/contract.md per flag, as a realistic mistake would, so that solar-chaos can
show that the scenario aimed at that promise catches its violation. netsync only; off by default;
every role announces the flags that concern it at start, at error level and on stderr."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from netsync.logs import Log

ENV = "NETSYNC_BUGGIFY"


@dataclass(frozen=True)
class Flag:
    role: str
    mistake: str  # what the code does wrong
    promise: str  # the promise of docs/contract.md it breaks


FLAGS: dict[str, Flag] = {
    "no-dedup-header": Flag(
        "orchestrator",
        "publishes without the Nats-Msg-Id header",
        "Commitment: JetStream drops a replay inside the duplicate window",
    ),
    "no-window-lookup": Flag(
        "orchestrator",
        "republishes a replay past the duplicate window without looking it up in the stream",
        "Exactly once, also past the duplicate window",
    ),
    "window-age-at-send": Flag(
        "orchestrator",
        "judges a replay inside the duplicate window by its age when it publishes, not when it lands:"
        " the decision's wait for NATS and the publish's own flight are not counted",
        "Exactly once, also past the duplicate window, when the link to NATS is slow",
    ),
    "stall-is-absent": Flag(
        "orchestrator",
        "takes a stream lookup that stopped answering half-way for 'not in the stream'",
        "Exactly once, also past the duplicate window, when NATS stalls during a lookup",
    ),
    "trust-agent-clock": Flag(
        "orchestrator",
        "dates a replay by the agent's first_attempt_at (the agent's clock) instead of its age",
        "Exactly once, also past the duplicate window, whatever the agent's clock says",
    ),
    "ack-before-write": Flag(
        "projector",
        "acks a message before its SurrealDB write",
        "Projector: ack only after the write succeeded",
    ),
    "duplicate-rows": Flag(
        "projector",
        "CREATEs a row with a fresh id instead of UPSERTing sentiment:<cid>",
        "Projector: a redelivery rewrites the same row",
    ),
    "store-failure-refused": Flag(
        "projector",
        "counts SurrealDB's answer that its store failed (a disk's EIO) as a refusal of the statement",
        "Dead letters: an outage of the store, however long, never dead-letters an intent",
    ),
    "wrong-value": Flag(
        "projector",
        "writes each key's last value in a fetched batch into every row of that key in the batch",
        "Projector: the row holds the message's key and value",
    ),
    "buffer-unbounded": Flag(
        "agent",
        "never answers 429: the buffer grows past NETSYNC_BUFFER_CAP",
        "Pending-commit buffer: bounded by NETSYNC_BUFFER_CAP",
    ),
    "reject-after-commit": Flag(
        "agent",
        "with a full buffer, seeks a quorum and tries a direct commit, and answers 429 only when that fails",
        "Pending-commit buffer: a 429 comes before any quorum is sought",
    ),
    "keep-every-intent": Flag(
        "agent",
        "keeps a debug record of every intent it decided (about 4 KiB each) in a list never trimmed",
        "Resources: under steady load an agent's memory stays flat",
    ),
    "journal-late": Flag(
        "agent",
        "answers 202 at once and journals each decision two seconds after its answer",
        "Pending-commit buffer: journaled and fsynced before the 202",
    ),
    "journal-no-fsync": Flag(
        "agent",
        "writes each decision to its journal before the 202 but never fsyncs it (the page cache only)",
        "Pending-commit buffer: journaled and fsynced before the 202",
    ),
    "forget-first-attempt": Flag(
        "agent",
        "after a restart, sends replays with first_attempt_at counted from the process's start",
        "Exactly once past the duplicate window, across a restart of the agent",
    ),
    "trust-journal-clock": Flag(
        "agent",
        "after a restart, ages a replay by the journal's wall-clock time alone (now - first_attempt_at)",
        "Exactly once past the duplicate window, across a restart with the agent's clock stepped back",
    ),
    "forget-answers": Flag(
        "agent",
        "keeps its answers in memory only",
        "Agent HTTP API: a repeated POST gets its first answer, also after a restart",
    ),
    # Issue 28: promises no scenario reached (found by planted bugs written outside the project).
    "journal-after-answer": Flag(
        "agent",
        "sends the 202 first and journals (and fsyncs) the decision right after it",
        "Pending-commit buffer: journaled and fsynced before the 202",
    ),
    "cap-off-by-one": Flag(
        "agent",
        "admits a decision while the buffer already holds NETSYNC_BUFFER_CAP (checks depth > cap)",
        "Pending-commit buffer: bounded by NETSYNC_BUFFER_CAP",
    ),
    "reconnect-gives-up": Flag(
        "orchestrator",
        "bounds its reconnects to NATS (about 15 s of refused attempts, as nats-py's default) and then stays "
        "disconnected",
        "Commitment: the orchestrator resumes by itself after a NATS outage of any length",
    ),
    "cid-dollar-anchor": Flag(
        "agent",
        "checks a cid with a pattern whose $ also matches before a trailing newline, so 'abc\\n' is taken; "
        "the orchestrator refuses its commit and the agent replays it for ever",
        "Agent HTTP API: a cid is 1 to 64 of [A-Za-z0-9._:-], the whole string",
    ),
    "cursor-before-apply": Flag(
        "analytics",
        "saves the cursor past a page before applying it, and appends the applied log through a buffer "
        "flushed every 10 s: a crash loses changes the cursor has passed",
        "Analytics: each change appended and fsynced before the cursor passes it",
    ),
    "apply-out-of-order": Flag(
        "analytics",
        "applies each page's changes last first, and lets the last applied change of a key win whatever "
        "its stream_seq",
        "Analytics: the view keeps, per key, the row of highest stream_seq",
    ),
    "skip-gap": Flag(
        "analytics",
        "never checks for a gap: no count of the table, no reread, no audit, no clock-back check; a change "
        "the feed did not give is skipped silently",
        "Analytics: it never skips a gap silently",
    ),
}


def parse(raw: str) -> frozenset[str]:
    """The flags of a `NETSYNC_BUGGIFY` value; ValueError naming an unknown one and the known."""
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in FLAGS]
    if unknown:
        raise ValueError(f"{ENV}: unknown flag {unknown[0]!r}; known: {', '.join(FLAGS)}")
    return frozenset(names)


def from_env() -> frozenset[str]:
    return parse(os.environ.get(ENV, ""))


def announce(bugs: frozenset[str], role: str, log: Log) -> None:
    """Say loudly which planted bugs this process runs with."""
    for name in sorted(bugs):
        flag = FLAGS[name]
        if flag.role != role:
            continue
        log.error("BUGGIFY: a planted bug is on", flag=name, mistake=flag.mistake, breaks=flag.promise)
        print(f"netsync {role}: BUGGIFY {name} is ON: {flag.mistake}", file=sys.stderr, flush=True)
