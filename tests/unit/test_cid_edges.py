"""The load's `cids: edges` mode (issue 28): cids at the edges of the contract's rule, what the history
records of each answer, that the checkers see an answer that broke the rule, and netsync's planted
`cid-dollar-anchor`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.load import LoadPlan, intents
from harness.load.cids import KINDS, OUTSIDE, follows_rule
from harness.load.ops import completion
from harness.scenario import ScenarioError, load_scenario
from netsync.intents import BadRequest, parse_intent, valid_cid
from tests.unit.judging import check, details, healthy

AGENTS = ["agent-1", "agent-2", "agent-3"]
PREFIX = "20261207-033256-abcdef-s7"


def plan(seed: int = 7, total: int = 400, cids: str = "edges") -> LoadPlan:
    return LoadPlan(rate=20, duration=total / 20, keys=16, clients=8, timeout=2, seed=seed, cids=cids)


def edges(seed: int = 7, total: int = 400) -> list:
    return list(intents(plan(seed, total), AGENTS, PREFIX))


def test_every_kind_is_sent_and_every_cid_is_unique_in_the_run() -> None:
    sent = edges()
    assert {i.kind for i in sent} == {kind for kind, _ in KINDS}
    assert len({i.cid for i in sent}) == len(sent) == 400
    by_kind = {kind: [i.cid for i in sent if i.kind == kind] for kind, _ in KINDS}
    assert {len(c) for c in by_kind["max-length"]} == {64}
    assert {len(c) for c in by_kind["too-long"]} == {65}
    assert {len(c) for c in by_kind["single"]} == {1}
    assert all(set(".:-") <= set(c) for c in by_kind["punctuation"])
    assert all(c.endswith("\n") for c in by_kind["newline"] + by_kind["pair-newline"])


def test_the_loads_rule_and_netsyncs_agree_on_every_cid_sent() -> None:
    for i in edges():
        assert follows_rule(i.cid) is valid_cid(i.cid) is (i.off_rule is None), repr(i.cid)


def test_x_newline_goes_right_after_x_to_the_same_agent() -> None:
    sent = edges()
    pairs = [(a, b) for a, b in zip(sent, sent[1:], strict=False) if b.kind == "pair-newline"]
    assert len(pairs) == 400 // len(KINDS)
    for x, x_newline in pairs:
        assert x.kind == "pair" and x_newline.cid == x.cid + "\n"
        assert x_newline.agent == x.agent and x_newline.at - x.at == pytest.approx(1 / 20)


def test_single_characters_do_not_repeat_past_the_66_of_the_rule() -> None:
    sent = edges(total=len(KINDS) * 70)
    singles = [i.cid for i in sent if i.kind == "single"]
    assert len(set(singles)) == len(singles) == 70
    assert [len(c) for c in singles] == [1] * 66 + [2] * 4


def test_the_same_seed_names_the_same_cids_and_other_seeds_other_singles() -> None:
    assert [i.cid for i in edges()] == [i.cid for i in edges()]
    first = [i.cid for i in edges(seed=1) if i.kind == "single"]
    assert first != [i.cid for i in edges(seed=2) if i.kind == "single"]


def test_edges_keep_the_plans_agents_keys_and_values_except_the_pairs_agent() -> None:
    plain = list(intents(plan(cids="plain"), AGENTS, PREFIX))
    for p, e in zip(plain, edges(), strict=True):
        assert (p.index, p.at, p.key, p.value) == (e.index, e.at, e.key, e.value)
        assert e.kind == "pair-newline" or p.agent == e.agent
    assert [p.cid for p in plain[:2]] == [f"{PREFIX}-000000", f"{PREFIX}-000001"]


def test_n_load_processes_name_each_intent_alike() -> None:
    whole = {i.index: i for i in edges()}
    for k in range(3):
        for i in intents(plan(), AGENTS, PREFIX, share=(k, 3)):
            assert i == whole[i.index]


def _one(kind: str):
    return next(i for i in edges() if i.kind == kind)


def test_an_off_rule_cid_answered_400_is_a_fail_and_breaks_nothing() -> None:
    intent = _one("pair-newline")
    done = completion("c1", intent, 400, b'{"error": "cid", "field": "cid"}', None)
    assert (
        done["type"] == "fail"
        and done["outcome"] == "rejected"
        and done["reason"].startswith("invalid: ")
        and "contract" not in done
    )


def test_an_off_rule_cid_taken_is_recorded_as_taken_and_as_a_breach() -> None:
    intent = _one("newline")
    payload = json.dumps({"cid": intent.cid, "outcome": "pending-commit", "quorum_ms": 3}).encode()
    done = completion("c1", intent, 202, payload, None)
    assert done["type"] == "ok" and done["outcome"] == "pending-commit"
    assert done["contract"] == (
        f"cid: {ascii(intent.cid)} has a trailing newline, off the rule, yet HTTP 202 took it, not 400"
    )
    aborted = completion("c1", _one("too-long"), 409, b'{"outcome": "aborted"}', None)
    assert aborted["type"] == "fail" and "65 characters, off the rule, yet HTTP 409" in aborted["contract"]


def test_a_cid_on_the_rule_refused_400_is_a_breach_and_a_plain_one_is_not() -> None:
    done = completion("c1", _one("max-length"), 400, b"{}", None)
    assert done["type"] == "fail" and "(max-length) follows the rule, yet HTTP 400" in done["contract"]
    plain = next(intents(plan(cids="plain"), AGENTS, PREFIX))
    assert "contract" not in completion("c1", plain, 400, b"{}", None)


def test_the_checkers_see_an_off_rule_cid_the_agent_took(tmp_path: Path) -> None:
    intent = _one("newline")
    run = healthy()
    run.invoke(intent.cid, 9.0, key=intent.key, value=intent.value)
    payload = json.dumps({"cid": intent.cid, "outcome": "committed", "stream_seq": 1}).encode()
    run.history.append({"t": 9.1, **completion("c1", intent, 200, payload, None)})
    verdict = check(run, tmp_path)
    assert verdict["valid"] is False
    assert any("has a trailing newline, off the rule" in d for d in details(verdict, "expectation"))
    # X\n answered with seq 1, another cid's message, and no message of its own: `lost`, not seq-mismatch
    assert [a["cid"] for a in verdict["anomalies"] if a["kind"] == "lost"] == [intent.cid]
    assert details(verdict, "seq-mismatch") == []


def test_the_edges_mode_is_a_load_field_and_a_wrong_one_names_its_line(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: good\nload: {rate: 5, duration: 10s, cids: edges}\n")
    assert load_scenario(good).load.cids == "edges"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nload:\n  rate: 5\n  duration: 10s\n  cids: edge\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(bad)
    [problem] = caught.value.problems
    assert problem == f"{bad}:5: load.cids: got 'edge'; allowed: plain, edges"


def body(cid: str) -> bytes:
    return json.dumps({"key": "k", "value": 1, "cid": cid}).encode()


def test_netsync_refuses_a_trailing_newline_and_the_planted_bug_takes_it() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_intent(body("abc\n"), frozenset())
    assert caught.value.field == "cid"
    assert parse_intent(body("abc\n"), frozenset({"cid-dollar-anchor"})) == ("k", 1, "abc\n")


@pytest.mark.parametrize("cid", ["a" * 65, "abc/", "abc\n\n", "\nabc", "ab\nc", ""])
def test_the_planted_bug_takes_only_the_one_trailing_newline(cid: str) -> None:
    with pytest.raises(BadRequest):
        parse_intent(body(cid), frozenset({"cid-dollar-anchor"}))


def test_every_character_outside_the_set_is_sent_once_in_twelve_cycles() -> None:
    outside = [i.cid[-1] for i in edges(total=len(KINDS) * len(OUTSIDE)) if i.kind == "outside"]
    assert sorted(outside) == sorted(OUTSIDE)
