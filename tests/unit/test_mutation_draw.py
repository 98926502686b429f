"""harness.mutation.mutants: which mutants a seed draws. The drawing's rules with a stand-in for
cosmic-ray's enumeration (a mutant per comparison `<`, rewritten to `<=`), so no cosmic-ray is needed."""

from __future__ import annotations

import re

from harness.mutation.mutants import Mutant, annotation_spans, in_spans, planted_lines, sample, why_not

AGENT = """from __future__ import annotations


class Agent:
    def admit(self, depth: int, cap: int | None) -> bool:
        if "buffer-unbounded" in self.bugs:
            return depth < cap + 1
        if depth < cap:
            return True
        return depth < 0
"""
BUFFER = "def full(n, cap):\n    return n < cap\n\n\ndef empty(n):\n    return n < 1\n"


def lt_mutants(file: str, source: str) -> list[Mutant]:
    out = []
    for no, text in enumerate(source.splitlines(), 1):
        for m in re.finditer(r" < ", text):
            out.append(Mutant(file, "core/ReplaceComparisonOperator_Lt_LtE", len(out), no, m.start() + 1))
    return out


def lt_to_lte(source: str, m: Mutant) -> str:
    lines = source.splitlines(keepends=True)
    text = lines[m.line - 1]
    lines[m.line - 1] = text[: m.col] + "<=" + text[m.col + 1 :]
    return "".join(lines)


SOURCES = {"netsync/agent.py": AGENT, "netsync/buffer.py": BUFFER}


def keys(n: int, seed: int) -> list[str]:
    drawn, _ = sample(SOURCES, n, seed, lt_mutants, lt_to_lte)
    return [d.mutant.key for d in drawn]


def test_the_same_seed_draws_the_same_mutants_in_the_same_order() -> None:
    assert keys(3, 7) == keys(3, 7)
    assert len(keys(3, 7)) == 3


def test_a_larger_n_draws_the_smaller_sample_first() -> None:
    assert keys(4, 7)[:2] == keys(2, 7)


def test_other_seeds_draw_other_orders() -> None:
    orders = {tuple(keys(4, seed)) for seed in range(1, 9)}
    assert len(orders) > 1


def test_the_planted_bug_lines_are_never_drawn_and_are_counted() -> None:
    drawn, skipped = sample(SOURCES, 100, 1, lt_mutants, lt_to_lte)
    lines = {(d.mutant.file, d.mutant.line) for d in drawn}
    assert ("netsync/agent.py", 7) not in lines  # the body of `if "buffer-unbounded" in self.bugs`
    assert {
        ("netsync/agent.py", 8),
        ("netsync/agent.py", 10),
        ("netsync/buffer.py", 2),
        ("netsync/buffer.py", 6),
    } <= lines
    assert skipped == {"planted-bug line": 1}
    assert len(drawn) == 4  # all there are: fewer than asked is no error


def test_each_drawn_mutant_carries_its_diff() -> None:
    drawn, _ = sample({"netsync/buffer.py": BUFFER}, 1, 3, lt_mutants, lt_to_lte)
    d = drawn[0]
    assert d.diff.startswith("--- a/netsync/buffer.py\n+++ b/netsync/buffer.py\n")
    assert f"-    return n < {'cap' if d.mutant.line == 2 else '1'}" in d.diff
    assert "<=" in d.mutated


def test_planted_lines_covers_the_flag_test_and_its_body_not_the_rest() -> None:
    assert planted_lines(AGENT) == {6, 7}


def test_a_mutant_in_a_type_annotation_is_equivalent_under_future_annotations() -> None:
    spans = annotation_spans(AGENT)
    assert in_spans(spans, 5, AGENT.splitlines()[4].index("int | None") + 4)  # the `|` of `int | None`
    assert in_spans(spans, 5, AGENT.splitlines()[4].index("bool"))  # the return annotation
    assert not in_spans(spans, 8, AGENT.splitlines()[7].index("<"))


def test_why_not_names_what_makes_a_mutant_not_worth_a_run() -> None:
    assert why_not(BUFFER, None) == "not applied"
    assert why_not(BUFFER, BUFFER.replace("n < cap", "n < < cap")).startswith("does not compile (")
    assert why_not(BUFFER, BUFFER.replace("n < cap", "n<cap")) == "same program"
    assert why_not(BUFFER, BUFFER.replace("n < cap", "n <= cap")) is None
