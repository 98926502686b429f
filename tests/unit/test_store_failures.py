"""The projector's line between "SurrealDB will never take this statement" (refused: counts toward
dead-lettering) and "its store failed" (transient: retried however long), drawn from SurrealDB's
answers as 3.x sends them (surrealdb-core 3.3.5): by the error's kind, and by SurrealDB's own words at
the start of its text, never by anything it echoes of the value it refused (issue 27)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from netsync import projector as projector_module
from netsync.logs import Log
from netsync.projector import DeadLetter, Projector
from netsync.settings import ProjectorSettings
from netsync.surreal import StatementFailed, check, refused

EIO = (
    "There was a problem with a transaction: WAL error: IO error: "
    "kind=uncategorized error, message=Input/output error (os error 5)"
)
CONFLICT = "Transaction conflict: Transaction write conflict. This transaction can be retried"

# Every phrase that once meant "the store failed" wherever it appeared, and each store failure's
# whole text: what a key, a cid or an operator's THROW may carry to poison the classification.
PHRASES = (
    "There was a problem with a transaction",
    "IO error",
    "(os error 5)",
    "can be retried",
    "underlying datastore",
    EIO,
    CONFLICT,
    "There was a problem with the key-value store: " + EIO,
    "There was a problem with the datastore: disk gone",
    "Connection to storage backend failed: refused",
    "The datastore is shutting down",
    "The datastore is in read-and-deletion-only mode due to disk space limitations",
    "The transaction's commit outcome is unknown",
    "Failed to commit transaction due to a read or write conflict. This transaction can be retried",
    "I/O error: Input/output error (os error 5)",
)


def statement(result: str, kind: str | None = None, details: Any = None) -> StatementFailed:
    """The error check() raises for one statement SurrealDB answered with `ERR`."""
    stmt: dict[str, Any] = {"status": "ERR", "time": "1ms", "result": result}
    if kind is not None:
        stmt["kind"] = kind
    if details is not None:
        stmt["details"] = details
    with pytest.raises(StatementFailed) as e:
        check({"id": "1", "result": [stmt]})
    return e.value


def call_error(error: dict[str, Any]) -> StatementFailed:
    """The error check() raises when SurrealDB answers the whole call with an error."""
    with pytest.raises(StatementFailed) as e:
        check({"id": "1", "error": error})
    return e.value


@pytest.mark.parametrize("phrase", PHRASES)
@pytest.mark.parametrize(
    ("template", "kind"),
    [
        # An operator's ASSERT, as SurrealDB words it (doc/error.rs FieldValue), echoing the key.
        (
            "Found '{}' for field `key`, with record `sentiment:c`, but field must conform to: true",
            "Internal",
        ),
        # A TYPE clause (FieldCoerce), echoing the value it could not coerce.
        (
            "Couldn't coerce value for field `value` of `sentiment:c`: Expected `int` but found `'{}'`",
            "Internal",
        ),
        # An operator's event or function THROWing the key.
        ("An error occurred: {}", "Thrown"),
        # The cid, echoed in a record id.
        ("Database record `sentiment:⟨{}⟩` already exists", "AlreadyExists"),
        # Kinds no storage failure carries, whatever the text starts with.
        ("{}", "Thrown"),
        ("{}", "Validation"),
        ("{}", "Serialization"),
        # A server that sends no kind: only its own words before the echo count.
        ("Found '{}' for field `key`, with record `sentiment:c`, but field must conform to: true", None),
        ("Couldn't coerce value for field `key` of `sentiment:c`: Expected `int` but found `'{}'`", None),
    ],
)
def test_a_value_that_embeds_a_store_failure_is_still_refused(
    template: str, kind: str | None, phrase: str
) -> None:
    e = statement(template.format(phrase), kind)
    assert refused(e), (kind, str(e))


@pytest.mark.parametrize("phrase", PHRASES)
def test_an_echo_in_a_call_error_or_a_query_of_another_detail_is_refused(phrase: str) -> None:
    assert refused(
        call_error({"code": -32000, "message": f"Found '{phrase}' for field `key`", "kind": "Internal"})
    )
    assert refused(call_error({"code": -32000, "message": f"Found '{phrase}' for field `key`"}))
    # A query that timed out or was cancelled is not the store failing.
    assert refused(statement(phrase, "Query", {"kind": "TimedOut"}))


@pytest.mark.parametrize(
    "failure",
    [
        # The disk failing at commit (projector-disk-error, SurrealDB 3.3.5): the storage error's own text.
        lambda: statement(EIO, "Query", {"kind": "NotExecuted"}),
        lambda: statement(EIO),  # the same from a server that sends no kind
        # A storage error met mid-statement, wrapped once by the engine.
        lambda: statement("There was a problem with the key-value store: " + EIO, "Internal"),
        lambda: statement("There was a problem with the datastore: failed to open", "Internal"),
        lambda: statement("I/O error: Input/output error (os error 5)", "Internal"),
        # A full disk.
        lambda: statement(
            "There was a problem with the key-value store: The datastore is in read-and-deletion-only mode "
            "due to disk space limitations. Only read and delete operations are allowed.",
            "NotAllowed",
        ),
        lambda: statement(
            "There was a problem with the key-value store: The datastore is shutting down", "Internal"
        ),
        lambda: statement(
            "The transaction's commit outcome is unknown, so whether this query was applied", "Query"
        ),
        # A lost conflict, by its kind whatever its text; as 3.0.0 wrapped it; by code, before 3.x.
        lambda: statement(CONFLICT, "Query", {"kind": "TransactionConflict"}),
        lambda: statement("Found 'x' for field", "Query", {"kind": "TransactionConflict"}),
        lambda: statement(CONFLICT, "Query", {"kind": "Query", "details": {"kind": "TransactionConflict"}}),
        lambda: call_error({"code": -32009, "message": "Transaction conflict: busy"}),
        lambda: statement(
            "Connection to storage backend failed: timeout", "Connection", {"kind": "ConnectionFailed"}
        ),
        # SurrealDB 2.x's texts, without a kind.
        lambda: statement(
            "Failed to commit transaction due to a read or write conflict. This transaction can be retried"
        ),
        lambda: statement(
            "There was a problem with the underlying datastore: Input/output error (os error 5)"
        ),
    ],
)
def test_a_real_store_failure_is_still_transient(failure) -> None:
    e = failure()
    assert not refused(e), str(e)


def test_the_refusal_names_what_surrealdb_said() -> None:
    e = statement("Found 5000 for field `value`, with record `sentiment:c`", "Internal")
    assert str(e) == "surreal statement failed: Found 5000 for field `value`, with record `sentiment:c`"
    assert (e.kind, e.detail) == ("Internal", None)
    assert repr(e).endswith(", kind='Internal', detail=None)")  # what the retry's log line shows


# -- the projector's write loop: eight refusals dead-letter; a store failure never does ------------------


class FakeStore:
    """Stands in for SurrealConnection.query: raises `error` for the first `fails` calls."""

    def __init__(self, error: BaseException, fails: int) -> None:
        self.error, self.fails, self.calls = error, fails, 0
        self.connected = True

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self.calls += 1
        if self.calls <= self.fails:
            raise self.error


def write(
    monkeypatch, error: BaseException, fails: int, bugs: frozenset[str] = frozenset()
) -> tuple[Any, int]:
    """Run the projector's write of one message against FakeStore; (result or DeadLetter, calls)."""
    monkeypatch.setattr(projector_module, "BACKOFF_FIRST", 0.0)
    monkeypatch.setattr(projector_module, "BACKOFF_CAP", 0.0)
    settings = ProjectorSettings(
        "projector", ("nats://127.0.0.1:1",), "S", "p", "ws://x", "u", "p", "n", "d", 0, bugs=bugs
    )

    async def run() -> Any:
        p = Projector(settings, Log("projector"))
        p.surreal = FakeStore(error, fails)
        try:
            return await p._write("c", {"key": "k", "value": 1}, 1, []), p.surreal.calls
        except DeadLetter as e:
            return e, p.surreal.calls

    return asyncio.run(run())


def test_a_poison_message_that_echoes_a_store_failure_is_dead_lettered(monkeypatch) -> None:
    poison = statement(
        f"Found '{EIO}' for field `key`, with record `sentiment:c`, but field must conform to: true",
        "Internal",
    )
    result, calls = write(monkeypatch, poison, fails=1000)
    assert isinstance(result, DeadLetter) and result.kind == "refused" and calls == 8
    assert "refused it 8 times" in str(result) and "Found '" in str(result)


def test_a_long_store_failure_is_retried_until_it_ends(monkeypatch) -> None:
    eio = statement(EIO, "Query", {"kind": "NotExecuted"})
    assert write(monkeypatch, eio, fails=50) == (True, 51)


def test_buggify_store_failure_refused_dead_letters_a_store_failure(monkeypatch) -> None:
    # The planted bug keeps its meaning (docs/contract.md): a failed store counted as a refusal.
    eio = statement(EIO, "Query", {"kind": "NotExecuted"})
    result, calls = write(monkeypatch, eio, fails=50, bugs=frozenset({"store-failure-refused"}))
    assert isinstance(result, DeadLetter) and calls == 8
