"""The judge compares JSON values with their JSON types (issue 27): `true` is not `1`, `1.0` is not
`1`, in a store row against its stream message, in the nemesis's evidence and in scenario.json
(../shared/RUN-FORMAT.md; docs/run-format.md, "projection-mismatch")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import store
from harness.checkers import judge
from harness.checkers.reconciliation import same_json
from tests.unit.judging import assert_only, check, details, found, healthy
from tests.unit.rundirs import RunDir, append_line

# --- values compare with their JSON types -------------------------------------------------------


def _projected(stream_value: Any, store_value: Any, field: str = "value") -> RunDir:
    """A healthy run and one intent x whose message holds stream_value and whose row store_value."""
    run = healthy()
    run.invoke("x", 2.5, **{field: stream_value})
    seq = run.message("x")
    run.ok("x", 2.6, stream_seq=seq)
    row = {"cid": "x", "key": run.kv["x"][0], "value": run.kv["x"][1], "stream_seq": seq}
    run.store.append({**row, field: store_value})
    return run


DIFFERENT = [
    ("true is not 1", True, 1),
    ("1 is not true", 1, True),
    ("false is not 0", False, 0),
    ("1.0 is not 1", 1.0, 1),
    ("1 is not 1.0", 1, 1.0),
    ("a string is not a number", "1", 1),
    ("null is not 0", None, 0),
    ("-0.0 is not the integer 0", -0.0, 0),
    ("big integers one apart", 2**70 + 1, 2**70),
    ("an integer past 2^53 is not its float", 2**53 + 1, float(2**53 + 1)),
    ("nested true is not 1", {"a": [True]}, {"a": [1]}),
    ("nested 2.0 is not 2", [{"n": 2.0}], [{"n": 2}]),
    ("array order matters", [1, 2], [2, 1]),
    ("an extra key", {"a": 1, "b": None}, {"a": 1}),
]


@pytest.mark.parametrize(
    ("stream_value", "store_value"), [d[1:] for d in DIFFERENT], ids=[d[0] for d in DIFFERENT]
)
def test_a_value_of_another_json_type_is_a_projection_mismatch(
    tmp_path: Path, stream_value: Any, store_value: Any
) -> None:
    v = check(_projected(stream_value, store_value), tmp_path)
    assert_only(v, ("projection-mismatch", "x"))
    assert (
        f"value {json.dumps(store_value)} vs {json.dumps(stream_value)}"
        in details(v, "projection-mismatch")[0]
    )


@pytest.mark.parametrize(("stream_key", "store_key"), [("7", 7), ("k", ["k"]), ("true", True)])
def test_a_key_of_another_json_type_is_a_projection_mismatch(
    tmp_path: Path, stream_key: Any, store_key: Any
) -> None:
    v = check(_projected(stream_key, store_key, field="key"), tmp_path)
    assert_only(v, ("projection-mismatch", "x"))
    assert "key " in details(v, "projection-mismatch")[0]


def test_the_detail_says_when_only_the_type_differs(tmp_path: Path) -> None:
    v = check(_projected(1, True), tmp_path)
    assert details(v, "projection-mismatch") == [
        "store row vs stream seq 6: value true vs 1 (a boolean vs an integer)"
    ]


SAME = [
    ("object key order", {"a": 1, "b": [1, {"c": 2, "d": 3}]}, {"b": [1, {"d": 3, "c": 2}], "a": 1}),
    ("a big integer", 2**70, 2**70),
    ("a negative big integer", -(2**64), -(2**64)),
    ("-0.0 and 0.0", -0.0, 0.0),
    ("0.1 written two ways that are one double", 0.1, 0.10000000000000001),
    ("nested equal values", {"a": [True, None, "s", 1.5]}, {"a": [True, None, "s", 1.5]}),
]


@pytest.mark.parametrize(("stream_value", "store_value"), [s[1:] for s in SAME], ids=[s[0] for s in SAME])
def test_the_same_json_value_is_no_mismatch(tmp_path: Path, stream_value: Any, store_value: Any) -> None:
    assert_only(check(_projected(stream_value, store_value), tmp_path))


def test_whitespace_and_escapes_in_the_store_line_do_not_matter(tmp_path: Path) -> None:
    run = _projected({"a": 1, "b": [1, 2]}, None)
    run.store.pop()  # the row, written by hand below
    path = run.write(tmp_path)
    seq = run.stream[-1]["seq"]
    append_line(
        path,
        store.STORE,
        '{ "cid" : "x" , "key" : "k-\\u0078" ,\t"value" : { "b" : [ 1 , 2 ] , "a" : 1 } , '
        + f'"stream_seq" : {seq} }}',
    )
    assert_only(judge(path))


def test_same_json_on_values_nested_past_the_recursion_limit() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    other: Any = 1.0
    for _ in range(5000):
        other = [other]
    assert same_json(deep, deep)
    assert not same_json(deep, other)


# --- JSON types in what the nemesis and scenario.json say ---------------------------------------


def _fault(kind: str, evidence: dict[str, Any], target: Any = None) -> RunDir:
    """Healthy traffic around a fault 10..12 with this evidence on its start line, nothing else biting."""
    run = healthy(n=5)
    run.start("f1", 10.0, kind, evidence=evidence, target=target).stop("f1", 12.0, kind)
    run.agents_drained(13.0, ("agent-1", "agent-2"))
    run.intent("after", 30.0)
    return run


@pytest.mark.parametrize(
    ("kind", "evidence"),
    [
        ("disk-error", {"failed": True}),
        ("disk-full", {"calls": {"enospc": True}}),
        ("disk-slow", {"calls": {"slowed": 1.0}}),
        ("power-loss", {"lost_bytes": 2**64}),
        ("repeat", {"reposted": True}),
        ("clock-skew", {"clock": {"agent-1": True}}),
        ("clock-skew", {"clock": {"agent-1": 10**400}}),
    ],
)
def test_a_sign_needs_a_number_of_the_right_json_type(
    tmp_path: Path, kind: str, evidence: dict[str, Any]
) -> None:
    """`true` is not one failed call, nor 1.0 a count of them: such evidence shows nothing."""
    v = check(_fault(kind, evidence), tmp_path)
    assert_only(v, ("no-effect", None))


def test_a_power_loss_whose_nodes_are_a_string_plans_no_death(tmp_path: Path) -> None:
    """ "agent-1" is a substring of "agent-12", not one of its nodes: agent-1's death is unplanned."""
    run = _fault("power-loss", {"lost_bytes": 4096}, target={"nodes": "agent-12"})
    run.sample(10.5, "agent-1", container="die", exit_code=137, oom_killed=False)
    run.sample(11.5, "agent-1", container="start")
    v = check(run, tmp_path)
    assert_only(v, ("expectation", None))
    assert details(v, "expectation")[0].startswith("unplanned_exits: agent-1's container died at t=10.5")


@pytest.mark.parametrize("nodes", [5, {"agent-1": True}, None, True])
def test_a_power_loss_whose_nodes_are_no_array_does_not_crash_the_check(tmp_path: Path, nodes: Any) -> None:
    run = _fault("power-loss", {"lost_bytes": 4096}, target={"nodes": nodes})
    run.sample(10.5, "agent-1", container="die", exit_code=137, oom_killed=False)
    v = check(run, tmp_path)
    assert v["checks"]["containers"]["valid"] is False  # judged: an unplanned death
    assert found(v) == [("expectation", None)]


@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), 2**64, True, "100", [100]],
    ids=["huge", "-huge", "2^64", "true", "string", "array"],
)
def test_a_budget_that_is_no_finite_number_names_its_field(tmp_path: Path, value: Any) -> None:
    run = healthy()
    run.scenario["budgets"] = {"intent_ms": value}
    v = check(run, tmp_path)
    assert v["valid"] == "unknown"
    assert v["checks"]["latency"]["error"].startswith(
        f"{tmp_path / 'run' / store.SCENARIO}: budgets.intent_ms: got"
    )


# --- same_json against a plain statement of the rule ---------------------------------------------

_LEAVES = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
_JSON = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=12,
)


def _canonical(value: Any) -> Any:
    """Each value tagged with its JSON type, objects as sorted pairs: equal exactly when the rule says."""
    if isinstance(value, dict):
        return ("object", sorted((k, _canonical(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("array", [_canonical(v) for v in value])
    if isinstance(value, float):
        return ("float", value + 0.0)  # -0.0 + 0.0 is 0.0: the one float decided equal to another
    return (type(value).__name__, value)


@settings(max_examples=150, deadline=None)
@given(_JSON, _JSON)
def test_same_json_is_equality_of_the_type_tagged_value(a: Any, b: Any) -> None:
    assert same_json(a, b) == (_canonical(a) == _canonical(b))
    assert same_json(a, a)
    assert same_json(a, msgspec.json.decode(msgspec.json.encode(a)))  # as the checkers read it back


@settings(max_examples=100, deadline=None)
@given(_JSON)
def test_a_number_written_as_the_other_json_number_type_differs(value: Any) -> None:
    def retyped(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: retyped(x) for k, x in v.items()}
        if isinstance(v, list):
            return [retyped(x) for x in v]
        if type(v) is int:
            return float(v) if abs(v) < 2**53 else v
        if type(v) is float and v.is_integer() and abs(v) < 2**53:
            return int(v)
        return v

    changed = retyped(value)
    assert same_json(value, changed) == (_canonical(value) == _canonical(changed))
