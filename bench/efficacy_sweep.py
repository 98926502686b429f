"""False alarms and catches over several seeds: the figures `make efficacy` proves once, repeated.

  python bench/efficacy_sweep.py --seeds 1 2 3 4 5 [--clean] [--flagged] [--only NAME ...]

- clean: every parameter set of every file in scenarios/, once per seed, against netsync without
  planted bugs; a run whose verdict is not valid is a false alarm (or a real bug of netsync).
- flagged: every row of docs/contract.md's planted-bug table, once per seed, with its flag on; a
  run is caught when its verdict is invalid with the anomaly kind the row names.
A system is reused (reset between runs) while the configuration stays the same, as in pytest.
Each run is one line of reports/bench/efficacy-<time>.jsonl; the summary tables are printed at the
end and written beside it (.md). Runs one at a time: the machine's two cores are the budget.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.images import Images  # noqa: E402
from harness.paths import ROOT, reports_dir  # noqa: E402
from harness.planted import planted  # noqa: E402
from harness.runner import run_scenario, system_config  # noqa: E402
from harness.scenario import Scenario, load_scenarios  # noqa: E402
from harness.topology.system import SharedSystem  # noqa: E402


def run_one(
    systems: SharedSystem, scenario: Scenario, param: str, seed: int, buggify: tuple[str, ...]
) -> dict:
    t0 = time.monotonic()
    sut = systems.get(system_config(scenario, None, buggify))
    result = asyncio.run(
        run_scenario(
            scenario,
            images=systems.images,
            reports=reports_dir(),
            seed=seed,
            param_id=param,
            buggify=buggify,
            sut=sut,
        )
    )
    kinds = Counter(a["kind"] for a in result.verdict.get("anomalies", []))
    return {
        "scenario": scenario.name,
        "param": param,
        "seed": result.seed,
        "buggify": list(buggify),
        "valid": result.verdict.get("valid"),
        "kinds": dict(sorted(kinds.items())),
        "run_dir": str(result.dir.relative_to(ROOT) if result.dir.is_relative_to(ROOT) else result.dir),
        "seconds": round(time.monotonic() - t0, 1),
    }


def clean_runs(seeds: list[int], only: set[str]) -> list[tuple[Scenario, str, int, tuple[str, ...]]]:
    todo = []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        seen = set()
        for param, scenario in load_scenarios(path):
            # The sweep's seed overrides the file's: parameter sets that differ only by seed are one.
            rest = ",".join(p for p in param.split(",") if not p.startswith("seed="))
            if (only and scenario.name not in only) or rest in seen:
                continue
            seen.add(rest)
            todo += [(scenario, rest and param, seed, ()) for seed in seeds]
    return todo


def flagged_runs(seeds: list[int], only: set[str]) -> list[tuple[Scenario, str, int, tuple[str, ...]]]:
    todo = []
    for row in planted():
        if only and row.flag not in only and row.scenario not in only:
            continue
        ((param, scenario),) = load_scenarios(ROOT / "scenarios" / f"{row.scenario}.yaml")
        todo += [(scenario, param, seed, (row.flag,)) for seed in seeds]
    return todo


def summary(lines: list[dict[str, Any]]) -> str:
    out = []
    clean = [r for r in lines if not r["buggify"]]
    if clean:
        out += ["| scenario | runs | valid | not valid (seed: anomalies) |", "|---|---|---|---|"]
        names = sorted({(r["scenario"], r["param"]) for r in clean})
        for name, param in names:
            mine = [r for r in clean if (r["scenario"], r["param"]) == (name, param)]
            bad = [f"{r['seed']}: {r['kinds'] or r['valid']}" for r in mine if r["valid"] is not True]
            label = f"{name}[{param}]" if param else name
            valid = sum(r["valid"] is True for r in mine)
            out.append(f"| {label} | {len(mine)} | {valid} | {'; '.join(bad)} |")
    flagged = [r for r in lines if r["buggify"]]
    if flagged:
        want = {row.flag: row for row in planted()}
        out += ["", "| flag | scenario | anomaly expected | runs | caught | anomalies found (all runs) |"]
        out.append("|---|---|---|---|---|---|")
        for flag, row in want.items():
            mine = [r for r in flagged if r["buggify"] == [flag]]
            if not mine:
                continue
            caught = sum(r["valid"] is False and row.kind in r["kinds"] for r in mine)
            found: Counter[str] = Counter()
            for r in mine:
                found.update(r["kinds"])
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(found.items()))
            out.append(f"| `{flag}` | `{row.scenario}` | {row.kind} | {len(mine)} | {caught} | {kinds} |")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--clean", action="store_true", help="every shipped scenario without planted bugs")
    p.add_argument("--flagged", action="store_true", help="every planted bug against its scenario")
    p.add_argument("--only", nargs="*", default=[], help="scenario names or flags to keep")
    p.add_argument("--images", default="auto", choices=["auto", "offline", "official"])
    args = p.parse_args()
    if not (args.clean or args.flagged):
        args.clean = args.flagged = True
    only = set(args.only)
    todo = (clean_runs(args.seeds, only) if args.clean else []) + (
        flagged_runs(args.seeds, only) if args.flagged else []
    )
    out_dir = reports_dir() / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"efficacy-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    images = Images(args.images)
    images.ensure()
    systems = SharedSystem(images)
    lines: list[dict[str, Any]] = []
    try:
        for i, (scenario, param, seed, buggify) in enumerate(todo, 1):
            line = run_one(systems, scenario, param, seed, buggify)
            lines.append(line)
            with out.open("a") as f:
                f.write(json.dumps(line) + "\n")
            flag = f" --buggify {buggify[0]}" if buggify else ""
            print(
                f"[{i}/{len(todo)}] {scenario.name}{f'[{param}]' if param else ''} seed {seed}{flag}: "
                f"valid={line['valid']} {line['kinds']} ({line['seconds']} s)",
                flush=True,
            )
    finally:
        systems.close()
    table = summary(lines)
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(f"\nruns: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
