"""Mutants: every mutation cosmic-ray's operators can make in a file, and a sample of them drawn from a
seed. The operators and the rewriting are cosmic-ray's (pinned by `make mutation`); what is ours is the
choice of which to run: deterministic from the seed, never a planted bug's branch, never a mutant that
does not compile or changes nothing the interpreter sees."""

from __future__ import annotations

import ast
import difflib
import random
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

# cosmic-ray is imported where it is used: `make mutation` installs it, and the drawing's own rules are
# tested with no cosmic-ray (tests/unit/test_mutation_draw.py).


@dataclass(frozen=True)
class Mutant:
    file: str  # relative to the root the source was read from, e.g. netsync/agent.py
    operator: str  # cosmic-ray's name, e.g. core/ReplaceComparisonOperator_Gt_GtE
    occurrence: int  # the operator's n-th position in the file (cosmic-ray's numbering)
    line: int
    col: int

    @property
    def key(self) -> str:
        return f"{self.file}:{self.line}:{self.col} {self.operator} #{self.occurrence}"

    def as_dict(self) -> dict:
        return asdict(self)


def operators() -> list[str]:
    """cosmic-ray's operators that take no arguments (the two variable ones need a configuration)."""
    from cosmic_ray import plugins

    return sorted(n for n in plugins.operator_names() if not plugins.get_operator(n).arguments())


def enumerate_mutants(file: str, source: str, ops: Iterable[str] | None = None) -> list[Mutant]:
    """Every mutation of `source` by each operator, in cosmic-ray's order (its occurrences' numbering)."""
    from cosmic_ray import plugins
    from cosmic_ray.ast import ast_nodes, get_ast

    tree = get_ast(source)
    nodes = list(ast_nodes(tree))
    out = []
    for name in ops if ops is not None else operators():
        op = plugins.get_operator(name)()
        positions = (start for node in nodes for start, _end in op.mutation_positions(node))
        for occurrence, (line, col) in enumerate(positions):
            out.append(Mutant(file, name, occurrence, line, col))
    return out


def planted_lines(source: str) -> set[int]:
    """Lines that run only with a planted bug's flag on, or that test a flag (`"x" in self.bugs`): a
    mutant there measures buggify, not the judge. The body of an `if` whose test reads `bugs`, and every
    line that names `bugs`."""
    tree = ast.parse(source)
    lines = {no for no, text in enumerate(source.splitlines(), 1) if "bugs" in text}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "bugs" in (ast.get_source_segment(source, node.test) or ""):
            for stmt in node.body:
                lines.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
    return lines


Span = tuple[tuple[int, int], tuple[int, int]]


def annotation_spans(source: str) -> list[Span]:
    """Where the type annotations are: netsync's modules say `from __future__ import annotations`, so an
    annotation is never evaluated and a mutant in one (`int | None` to `int ** None`) is equivalent."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        found = []
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            found.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            found.append(node.returns)
        for a in found:
            spans.append(((a.lineno, a.col_offset), (a.end_lineno or a.lineno, a.end_col_offset or 0)))
    return spans


def in_spans(spans: list[Span], line: int, col: int) -> bool:
    return any(start <= (line, col) < end for start, end in spans)


def mutate(source: str, mutant: Mutant) -> str | None:
    """The mutated source, or None when cosmic-ray finds no such occurrence."""
    from cosmic_ray import plugins
    from cosmic_ray.mutating import mutate_code

    return mutate_code(source, plugins.get_operator(mutant.operator)(), mutant.occurrence)


def why_not(source: str, mutated: str | None) -> str | None:
    """Why a mutant is not worth a run (None when it is): nothing applied, does not compile, or the same
    program (cosmic-ray rewrites text; `x = 1` to `x = 1` through a formatting change is no mutant)."""
    if mutated is None:
        return "not applied"
    try:
        tree = ast.parse(mutated)
    except SyntaxError as e:
        return f"does not compile ({e.msg})"
    if ast.dump(tree) == ast.dump(ast.parse(source)):
        return "same program"
    return None


def diff(file: str, source: str, mutated: str) -> str:
    return "".join(
        difflib.unified_diff(
            source.splitlines(keepends=True), mutated.splitlines(keepends=True), f"a/{file}", f"b/{file}", n=2
        )
    )


@dataclass(frozen=True)
class Drawn:
    mutant: Mutant
    mutated: str
    diff: str


def sample(
    sources: dict[str, str],
    n: int,
    seed: int,
    enumerate_: Callable[[str, str], list[Mutant]] = enumerate_mutants,
    mutate_: Callable[[str, Mutant], str | None] = mutate,
) -> tuple[list[Drawn], dict[str, int]]:
    """`n` mutants of the files (file -> source), drawn uniformly from all their mutants by a
    random.Random(seed) shuffle, skipping those in a planted bug's lines or a type annotation and those
    not worth a run.
    The same sources and seed draw the same mutants in the same order. Also: how many were skipped, why."""
    pool: list[Mutant] = []
    for file in sorted(sources):
        pool += enumerate_(file, sources[file])
    random.Random(seed).shuffle(pool)
    planted = {file: planted_lines(src) for file, src in sources.items()}
    annotations = {file: annotation_spans(src) for file, src in sources.items()}
    drawn: list[Drawn] = []
    skipped: dict[str, int] = {}
    for m in pool:
        if len(drawn) >= n:
            break
        if m.line in planted[m.file]:
            skipped["planted-bug line"] = skipped.get("planted-bug line", 0) + 1
            continue
        if in_spans(annotations[m.file], m.line, m.col):
            skipped["annotation"] = skipped.get("annotation", 0) + 1
            continue
        mutated = mutate_(sources[m.file], m)
        if (why := why_not(sources[m.file], mutated)) is not None:
            reason = why.split(" (")[0]
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        assert mutated is not None
        drawn.append(Drawn(m, mutated, diff(m.file, sources[m.file], mutated)))
    return drawn, skipped


def read_sources(root: Path, files: Iterable[str]) -> dict[str, str]:
    return {f: (root / f).read_text() for f in files}
