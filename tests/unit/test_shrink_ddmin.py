"""Delta debugging and the shrink passes, on pure predicates (the oracle is the only thing faked: the
passes must find what a predicate needs, and never report a shape the predicate rejects)."""

from __future__ import annotations

from harness.shrink.candidate import Shape, canonical
from harness.shrink.ddmin import ddmin, split
from harness.shrink.passes import (
    fewer_agents,
    fewer_faults,
    lower_rate,
    merged_faults,
    shorter_load,
    shorter_windows,
)


def counting(pred):
    calls: list[list] = []

    def fails(xs):
        calls.append(list(xs))
        return pred(xs)

    return fails, calls


def test_split_keeps_order_and_every_item() -> None:
    assert split(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split([1], 4) == [[1]]


def test_one_culprit_among_ten_in_few_questions() -> None:
    fails, calls = counting(lambda xs: 7 in xs)
    assert ddmin(list(range(10)), fails) == [7]
    assert len(calls) <= 10  # ddmin's order on one culprit: about 2 log2(10)


def test_two_culprits_far_apart_are_both_kept() -> None:
    fails, _ = counting(lambda xs: 1 in xs and 8 in xs)
    assert ddmin(list(range(10)), fails) == [1, 8]


def test_a_failure_that_needs_nothing_shrinks_to_nothing_in_one_question() -> None:
    fails, calls = counting(lambda xs: True)
    assert ddmin(list(range(10)), fails) == []
    assert calls == [[]]


def test_the_result_always_fails_and_is_one_minimal() -> None:
    need = {2, 3, 5}
    fails, calls = counting(lambda xs: need <= set(xs))
    out = ddmin(list(range(12)), fails)
    assert set(out) == need
    for i in range(len(out)):  # removing any one item makes it pass
        assert not need <= set(out[:i] + out[i + 1 :])


def _shape(faults: list[dict], agents: int = 3, rate: float = 40.0, duration: float = 60.0) -> Shape:
    return Shape(tuple(canonical(f) for f in faults), agents, rate, duration)


def _lost_acks(at: float, length: float) -> dict:
    return {
        "fault": "partition",
        "at": at,
        "for": length,
        "links": ["orchestrator>nats"],
        "direction": "response",
    }


def _pause(at: float, length: float, target: str = "agent-2") -> dict:
    return {"fault": "pause", "at": at, "for": length, "target": target}


def _needs_lost_acks(shape: Shape, _what: str) -> bool:
    return any(f["fault"] == "partition" and f.get("direction") == "response" for f in shape.fault_dicts())


def test_fewer_faults_keeps_the_one_fault_that_matters() -> None:
    faults = [_pause(i * 5.0, 2.0) for i in range(9)]
    faults.insert(4, _lost_acks(22.0, 4.0))
    seen: list[Shape] = []

    def fails(shape: Shape, what: str) -> bool:
        seen.append(shape)
        return _needs_lost_acks(shape, what)

    out = fewer_faults(_shape(faults), fails)
    assert out.fault_dicts() == [_lost_acks(22.0, 4.0)]
    assert len(seen) <= 10


def test_merged_faults_joins_one_kind_on_one_target_only() -> None:
    shape = _shape([_pause(2, 3), _pause(6, 3), _pause(10, 2, "agent-3")])
    out = merged_faults(shape, lambda s, w: True)
    assert out.fault_dicts() == [_pause(2, 7), _pause(10, 2, "agent-3")]


def test_shorter_windows_halve_while_it_still_fails() -> None:
    # fails while the lost acks cover t=25
    def fails(shape: Shape, _w: str) -> bool:
        return any(f["at"] <= 25 < f["at"] + f["for"] for f in shape.fault_dicts())

    out = shorter_windows(_shape([_lost_acks(22.0, 8.0)]), fails)
    (f,) = out.fault_dicts()
    assert f["at"] <= 25 < f["at"] + f["for"]
    assert (f["at"], f["for"]) == (25.0, 0.5)  # 22+8 -> 22+4 -> 24+2 -> 25+1 -> 25+0.5, the floor


def test_fewer_agents_stops_at_the_first_that_passes() -> None:
    out = fewer_agents(_shape([], agents=5), lambda s, w: s.agents >= 3)
    assert out.agents == 3


def test_lower_rate_and_shorter_load() -> None:
    assert lower_rate(_shape([], rate=40), lambda s, w: s.rate >= 10).rate == 10
    out = shorter_load(_shape([_lost_acks(10, 4)], duration=60), lambda s, w: True)
    assert out.duration == 19.0  # the last fault's end (14 s) plus the 5 s tail; halving would cut it


def test_a_shape_is_described_and_keyed_by_content() -> None:
    a = _shape([_pause(1, 2)])
    reordered = dict(reversed(list(_pause(1, 2).items())))
    assert _shape([reordered]).key() == a.key()  # canonical JSON: key order does not make a new candidate
    assert _shape([_pause(1, 3)]).key() != a.key()
    assert a.describe() == "1 faults, 3 agents, 40/s for 60s"
