"""Running the sample: each mutant as an image of its own (FROM the netsync image, the mutated file
copied over it, built offline), run by `solar-chaos run --sut-image` against the scenarios of its
file, then removed. The run directory (reports/mutation/<id>/) holds mutants.jsonl, summary.json,
summary.md and survivors/*.diff; the terminal shows each mutant as it is judged."""

from __future__ import annotations

import json
import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.mutation.mutants import Drawn
from harness.mutation.outcome import SURVIVED, Classified, ScenarioResult, classify, score
from harness.mutation.table import Guard
from harness.subrun import held, run_cli

MUTANT_REPO = "solar-chaos-mutant"  # not solar-chaos/*: `solar-chaos images` would call it stale
APP = "/opt/netsync/app"  # where docker/netsync/Dockerfile puts the package


@dataclass
class Options:
    n: int
    seed: int
    budget_s: float  # no mutant is started past it
    mutant_timeout_s: float  # one mutant's scenarios, all together
    files: list[str]
    out: Path  # the run directory
    lock: Path | None  # held around each mutant's Docker work (a shared machine's heavy lock)
    command: str  # how this run was started, for the summary


Say = Callable[[str], None]


def build_image(base: str, drawn: Drawn, tag: str) -> None:
    from harness import engine
    from harness.images import IMAGE_LABEL

    with tempfile.TemporaryDirectory() as ctx:
        name = Path(drawn.mutant.file).name
        (Path(ctx) / name).write_text(drawn.mutated)
        dest = f"{APP}/{drawn.mutant.file}"
        (Path(ctx) / "Dockerfile").write_text(f"FROM {base}\nCOPY {name} {dest}\n")
        engine.client().images.build(
            path=ctx, tag=tag, network_mode="none", rm=True, forcerm=True, labels={IMAGE_LABEL: "mutant"}
        )


def remove_image(tag: str, say: Say) -> None:
    from harness import engine

    try:
        engine.client().images.remove(tag, force=True, noprune=False)
    except Exception as e:  # the score stands; the leftover is named so it can be removed by hand
        say(f"  could not remove {tag}: {e} (docker rmi {tag})")


def run_scenario(scenario: str, image: str, reports: Path, timeout_s: float) -> ScenarioResult:
    """`solar-chaos run scenarios/NAME.yaml --sut-image IMAGE` at the file's own seed; stopped by SIGTERM
    (the harness then tears down what it made) when it runs past `timeout_s`."""
    child = run_cli([f"scenarios/{scenario}.yaml", "--sut-image", image], reports, timeout_s)
    run_dir = str(child.run_dir.relative_to(reports.parents[2])) if child.run_dir else ""
    return ScenarioResult(scenario, child.seconds, child.rc, child.verdict, child.stderr_tail, run_dir)


def judge(drawn: Drawn, guard: Guard, base: str, tag: str, out: Path, opts: Options, say: Say) -> dict:
    """One mutant: its image built, its scenarios run in the map's order until one kills it or the
    mutant's budget is spent, its image removed. Its line of mutants.jsonl."""
    t0 = time.monotonic()
    results: list[ScenarioResult] = []
    try:
        build_image(base, drawn, tag)
        for scenario in guard.scenarios:
            left = opts.mutant_timeout_s - (time.monotonic() - t0)
            r = run_scenario(scenario, tag, out / "runs" / tag.rpartition(":")[2] / scenario, left)
            results.append(r)
            valid = {True: "valid", False: "INVALID"}.get((r.verdict or {}).get("valid"), "no verdict")
            kinds = ", ".join(r.as_dict()["anomalies"])
            said = "stopped past the budget" if r.rc is None else valid
            said += f" ({kinds})" if kinds else ""
            say(f"    {scenario}: {said} in {r.seconds:.0f} s")
            if classify(results).outcome != SURVIVED:
                break
        c = classify(results)
    except Exception as e:  # building the image, or the engine: not the mutant's doing
        c = Classified("error", "", f"{type(e).__name__}: {e}")
    finally:
        remove_image(tag, say)
    m = drawn.mutant
    return {
        "file": m.file,
        "line": m.line,
        "col": m.col,
        "operator": m.operator,
        "occurrence": m.occurrence,
        "diff": drawn.diff,
        "scenarios": list(guard.scenarios),
        "verdicts": [r.as_dict() for r in results],
        "outcome": c.outcome,
        "by": c.by,
        "how": c.how,
        "anomalies": c.kinds,
        "seconds": round(time.monotonic() - t0, 1),
    }


def run(drawn: list[Drawn], guards: list[Guard], skipped: dict[str, int], opts: Options, say: Say) -> dict:
    from harness.images import Images

    out = opts.out
    (out / "survivors").mkdir(parents=True, exist_ok=True)
    by_file = {g.file: g for g in guards}
    with held(opts.lock):
        images = Images()
        images.ensure()
        base = images.ref("netsync")
    say(f"mutation: {len(drawn)} mutants drawn (seed {opts.seed}) of {', '.join(by_file)}; FROM {base}")
    if skipped:
        say("  skipped while drawing: " + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
    t0 = time.monotonic()
    lines: list[dict] = []
    for k, d in enumerate(drawn, 1):
        if time.monotonic() - t0 >= opts.budget_s:
            say(f"budget of {opts.budget_s:.0f} s spent: {len(drawn) - k + 1} mutants not run")
            break
        m = d.mutant
        say(f"[{k}/{len(drawn)}] {m.file}:{m.line} {m.operator.split('/')[-1]}")
        tag = f"{MUTANT_REPO}:{out.name}-{k:03d}"
        with held(opts.lock):
            line = judge(d, by_file[m.file], base, tag, out, opts, say)
        line["n"] = k
        lines.append(line)
        with open(out / "mutants.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        if line["outcome"] == SURVIVED:
            (out / "survivors" / f"{k:03d}.diff").write_text(line["diff"])
        how = f": {line['how']}" if line["how"] else ""
        say(f"  {line['outcome']}{how} ({line['seconds']:.0f} s)")
    summary = {
        "command": opts.command,
        "seed": opts.seed,
        "drawn": len(drawn),
        "run": len(lines),
        "skipped_while_drawing": skipped,
        "base_image": base,
        "seconds": round(time.monotonic() - t0, 1),
        **score([ln["outcome"] for ln in lines]),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "summary.md").write_text(summary_md(summary, lines))
    return summary


def summary_md(summary: dict, lines: list[dict]) -> str:
    s = summary
    text = [
        f"# Mutation score: {s['score']}",
        "",
        f"`{s['command']}`: {s['run']} of {s['drawn']} drawn mutants run in {s['seconds']:.0f} s; "
        f"killed {s['killed']}, survived {s['survived']}, timed out {s['timed-out']}, error {s['error']}.",
        "",
        "| # | mutant | outcome | by | how | s |",
        "|---|---|---|---|---|---|",
    ]
    for ln in lines:
        where = f"`{ln['file']}:{ln['line']}` {ln['operator'].split('/')[-1]}"
        text.append(
            f"| {ln['n']} | {where} | {ln['outcome']} | {ln['by']} | {ln['how']} | {ln['seconds']:.0f} |"
        )
    survivors = [ln for ln in lines if ln["outcome"] == SURVIVED]
    if survivors:
        text += ["", "## Survivors", ""]
        for ln in survivors:
            ran = ", ".join(v["scenario"] for v in ln["verdicts"])
            text += [
                f"### {ln['n']}: `{ln['file']}:{ln['line']}` (valid in {ran})",
                "",
                "```diff",
                ln["diff"],
                "```",
                "",
            ]
    return "\n".join(text) + "\n"


def command_line(argv: list[str]) -> str:
    return shlex.join(["python", "-m", "harness.mutation", *argv])
