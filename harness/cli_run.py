"""`solar-chaos run FILE`: each parameter set of a scenario file run, judged and reported on the terminal
(a line per check, PASS or FAIL with the headline, the anomalies, the command that re-runs it). What the
scenario file, the system under test or the engine said is printed through terminal.safe."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from harness.errors import HarnessError
from harness.terminal import safe

T = TypeVar("T")


class Terminated(Exception):
    """The run was stopped by SIGTERM, after its faults were healed and its containers removed."""


async def stoppable(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro`; a SIGTERM (a cancelled CI job, `kill`) cancels it as Ctrl-C does, so that its faults are
    healed and its containers and mounts removed by the harness itself before it exits, its history
    kept, not left to the reaper and the faultfs daemons; then Terminated. A second SIGTERM kills at once.
    Through the event loop's own handler: a harness started in the background has SIGINT ignored."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    got: list[bool] = []

    def on_term() -> None:
        got.append(True)
        loop.remove_signal_handler(signal.SIGTERM)  # the next one takes its default action
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        return await coro
    except asyncio.CancelledError:
        if got:
            raise Terminated from None
        raise
    finally:
        if not got:
            loop.remove_signal_handler(signal.SIGTERM)


def cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.checkers import exit_code
    from harness.checkers.base import merge
    from harness.images import Images
    from harness.implementations import exclusive, skipped
    from harness.paths import reports_dir
    from harness.runner import run_scenario, system_config
    from harness.scenario import load_scenarios
    from harness.scenario.hosts import read_hosts_file

    overrides: dict[str, Any] = {"topology.agents": args.agents} if args.agents else {}
    origins = {}
    if args.hosts is not None:  # in place of the file's own topology.hosts
        overrides["topology.hosts"] = read_hosts_file(args.hosts)
        origins["topology.hosts"] = f"--hosts {args.hosts}"
    sets = load_scenarios(Path(args.file), overrides, soak_duration=args.soak_duration, origins=origins)
    if args.param is not None:
        chosen = [(param_id, sc) for param_id, sc in sets if param_id == args.param]
        if not chosen:
            ids = ", ".join(param_id or '""' for param_id, _ in sets)
            raise HarnessError(f"{args.file}: no parameter set {args.param!r}; allowed: {ids}")
        sets = chosen
    from harness.topology.disks import faultfs_missing

    exclusive(args.sut, args.sut_image)
    for _param_id, scenario in sets:  # refused, not skipped: the user asked for this scenario by name
        why = (
            faultfs_missing(scenario.topology.faultfs_nodes)
            or skipped(scenario, args.sut)
            or system_config(scenario).away_from_folders()
        )
        if why is not None:
            print(safe(f"{args.file}: cannot run here: {why}"), file=sys.stderr)
            return 2
    images = Images(args.images)
    images.ensure()
    progress = progress_printer(sys.stderr.isatty())
    validities = []
    for param_id, scenario in sets:
        label = safe(f"{scenario.name}[{param_id}]" if param_id else scenario.name)
        print(f"== {label}", file=sys.stderr)
        result = asyncio.run(
            stoppable(
                run_scenario(
                    scenario,
                    images=images,
                    reports=Path(args.reports) if args.reports else reports_dir(),
                    seed=args.seed,
                    param_id=param_id,
                    sut_image=args.sut_image,
                    sut_name=args.sut,
                    buggify=tuple(args.buggify),
                    source=args.file,
                    agents=args.agents,
                    progress=progress,
                    keep_running=args.keep_running,
                    soak_duration=args.soak_duration,
                    load_workers=args.load_workers,
                    hosts_file=args.hosts,
                )
            )
        )
        validities.append(result.verdict["valid"])
        print_result(label, scenario, result)
    return exit_code(merge(validities))


def progress_printer(live: bool) -> Callable[[str], None]:
    """The run's progress on stderr: on a terminal (`live`) the periodic "t=..." line rewrites itself;
    elsewhere every line is kept."""

    def progress(line: str) -> None:
        line = safe(line)  # it names faults, targets and what the engine or the system answered
        if live and line.startswith("t="):
            print(f"\r{line[:150]:<150}", end="", file=sys.stderr, flush=True)
        else:
            print(("\n" if live else "") + line, file=sys.stderr, flush=True)

    return progress


def print_result(label: str, scenario: Any, result: Any) -> None:
    """A judged run on the terminal: a line per check (stderr), PASS or FAIL, and for a failure its
    anomalies and the command that re-runs it. `label` is already escaped."""
    from harness.checkers.verdict import details, headline, word

    for name, check in result.verdict.get("checks", {}).items():
        print(f"  {safe(name):<16} {word(check.get('valid'))}", file=sys.stderr)
    report = f"; report: {safe(result.report)}" if result.report else ""
    where = safe(result.dir)
    if result.passed:
        print(f"PASS {label} (seed {result.seed}): {where}{report}")
        return
    print(f"FAIL {label} (seed {result.seed}): {headline(result.verdict)}; {where}{report}")
    if (known := scenario.expected_failure) is not None:  # still exit 1: the system has the bug
        found = {a["kind"] for a in result.verdict.get("anomalies", [])}
        as_known = "as expected" if set(known.anomalies) <= found else "NOT as expected"
        why = safe(" ".join(known.reason.split()))
        print(f"  {as_known}: expected_failures names {safe(', '.join(known.anomalies))}: {why}")
    for line in details(result.verdict):  # escaped there
        print(f"  {line}")
    print(f"re-run: {safe(result.rerun)}")
