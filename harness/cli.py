"""The `solar-chaos` command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

from harness import __version__, engine
from harness.cli_check import cmd_check
from harness.cli_clean import cmd_clean, stale_mounts
from harness.cli_run import Terminated, cmd_run
from harness.cli_swarm import cmd_swarm
from harness.errors import HarnessError
from harness.implementations import NAMES as IMPLEMENTATIONS
from harness.shrink import cli as shrink_cli
from harness.terminal import DEBUG_HINT, debug, safe, say_error

FIX_IMAGES = "solar-chaos images"


def cmd_doctor(args: argparse.Namespace) -> int:
    from harness.images import DEFAULT_ROLES, Images

    fixes: list[str] = []
    try:
        info = engine.engine_info()
    except HarnessError as e:
        print(f"engine     MISSING  {e}")
        print(f"\nfix: {engine.FIX_ENGINE}")
        return 1
    print(
        f"engine     ok       Docker {info.version} (API {info.api_version}), "
        f"storage {info.storage_driver}, cgroup v{info.cgroup_version}"
    )
    imgs = Images(args.mode, log=lambda m: None)
    print(f"images     mode     {imgs.mode.value}")
    for st in imgs.status():
        state = "ok     " if st.present else "MISSING"
        size = f"{st.size_mb:.0f} MB" if st.size_mb else ""
        # An implementation other than netsync is needed only where one is chosen (docs/implementations.md)
        optional = st.role not in DEFAULT_ROLES and st.role != "base"
        note = f"(only for --sut {st.role}; built at its first run)" if optional and not st.present else ""
        print(f"{st.role:<10} {state}  {st.ref:<48} {st.version:<10} {size}{note}")
        if not st.present and not optional:
            fixes.append(f"{FIX_IMAGES} --mode {imgs.mode.value}   # builds {st.role}")
    from harness.faultfs.control import fuse_problem

    if problem := fuse_problem():
        print(f"fuse       MISSING  {problem} (only scenarios with topology.disk need it)")
        fixes.append(problem)
    else:
        print("fuse       ok       /dev/fuse, fusermount3, mfusepy (faultfs)")
    runs = engine.list_runs()
    stale = [r for r in runs.values() if not r.alive]
    if stale:
        n = sum(r.count() for r in stale)
        print(f"leftovers  STALE    {n} resources from {len(stale)} runs no longer alive")
        fixes.append("solar-chaos clean")
    mounts = stale_mounts()
    if mounts:
        where = ", ".join(safe(m.mountpoint) for m in mounts)
        print(f"leftovers  STALE    {len(mounts)} faultfs mounts of runs no longer alive: {where}")
        fixes.append("solar-chaos clean")
    if fixes:
        print("\nto fix:")
        for f in dict.fromkeys(fixes):
            print(f"  {f}")
        return 1
    print("\nready")
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    import time

    from harness.images import RUNTIME_ROLES, Images

    t0 = time.monotonic()
    imgs = Images(args.mode)
    if args.check:
        missing = [st for st in imgs.status() if not st.present]
        for st in missing:
            print(f"missing: {st.role} {st.ref}")
        return 1 if missing else 0
    roles = tuple(args.roles) if args.roles else RUNTIME_ROLES
    refs = imgs.ensure(roles)
    for role, ref in refs.items():
        print(f"{role:<10} {ref}")
    print(f"images ready ({imgs.mode.value}) in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from harness.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.scenario import validate_each

    judged = invalid = 0
    for _path, problems in validate_each(args.files):  # every file, whatever the one before it held
        judged += 1
        invalid += bool(problems)
        for p in problems:
            print(p, file=sys.stderr, flush=True)
    if not judged:
        print("no scenario files (*.yaml) in: " + " ".join(args.files), file=sys.stderr)
        return 2
    if invalid:
        print(f"invalid: {invalid} of {judged} scenario files", file=sys.stderr)
        return 2
    print("valid: " + " ".join(args.files))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.report import report_paths

    return report_paths([Path(p) for p in args.dirs])  # harness/report/__init__.py


def _on_run_dirs(sub: Any, name: str, func: Any, help: str, description: str) -> argparse.ArgumentParser:
    """A command over run directories: `solar-chaos NAME DIR...`."""
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("dirs", nargs="+", help="a scenario's run directory, or a run folder reports/<run-id>/")
    p.set_defaults(func=func)
    return p


def _count(text: str) -> int:
    n = int(text) if text.strip().isdigit() else -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 0")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="solar-chaos",
        description="Chaos and soak harness for libp2p + NATS JetStream + SurrealDB systems.",
        epilog="An unexpected error is one line and exit 2; SOLAR_CHAOS_DEBUG=1 shows its traceback.",
    )
    p.add_argument("--version", action="version", version=f"solar-chaos {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mode_help = "offline (built here from package registries), official (pulled), or auto (default)"

    d = sub.add_parser("doctor", help="say what is present, what is missing and how to fix it")
    d.add_argument("--mode", default="auto", choices=["auto", "offline", "official"], help=mode_help)
    d.set_defaults(func=cmd_doctor)

    i = sub.add_parser("images", help="build (offline) or pull (official) the images; cached")
    i.add_argument("--mode", default="auto", choices=["auto", "offline", "official"], help=mode_help)
    i.add_argument("--check", action="store_true", help="only check; exit 1 when any is missing")
    i.add_argument(
        "roles",
        nargs="*",
        help="only these roles (nats toxiproxy surrealdb reaper netsync net-sync-ts; engine, for several "
        "engines on one machine, only when named: docs/scale.md)",
    )
    i.set_defaults(func=cmd_images)

    r = sub.add_parser(
        "run",
        help="run one scenario file (every parameter set) without pytest; judge each run directory",
        description="Run a scenario file's parameter sets one after another, each on a fresh system, and "
        "judge each run directory with the checkers (verdict.json). Exit 0 when every verdict is valid, "
        "1 when anomalies were found, 2 when a run could not be judged.",
    )
    r.add_argument("file", help="a scenario file, e.g. scenarios/nats-down.yaml")
    r.add_argument("--seed", type=int, default=None, help="default: the file's seed, else 0")
    r.add_argument("--param", default=None, help="only this parameter set of the matrix, e.g. mode=refuse")
    r.add_argument("--agents", type=int, default=None, help="override topology.agents")
    r.add_argument("--images", default="auto", choices=["auto", "offline", "official"], help=mode_help)
    r.add_argument(
        "--sut",
        default=None,
        choices=list(IMPLEMENTATIONS),
        help="the implementation every node runs whose implementation the scenario does not name "
        "(topology.implementations); default netsync; see docs/implementations.md",
    )
    r.add_argument(
        "--sut-image",
        default=None,
        help="an image of another implementation of docs/contract.md (not with --sut)",
    )
    r.add_argument(
        "--buggify",
        action="append",
        default=[],
        metavar="NAME",
        help="start the system under test with this planted bug (repeatable; docs/contract.md, 'Planted "
        "bugs'); refused (skipped in pytest) where an implementation in use lacks it",
    )
    r.add_argument("--reports", default=None, help="where run directories go (default: reports/)")
    r.add_argument("--keep-running", action="store_true", help="leave the system up afterwards")
    r.add_argument(
        "--load-workers",
        type=int,
        default=0,
        metavar="N",
        help="send the load with Locust in distributed mode: one master and N worker processes (containers "
        "on the engines where the hosts name the role load or load-K; docs/scale.md)",
    )
    r.add_argument(
        "--hosts",
        default=None,
        metavar="FILE",
        help="which engine runs which node: a YAML list of {engine, nodes} (or {hosts: [...]}), in place of "
        "the scenario's topology.hosts (docs/scenarios.md)",
    )
    r.add_argument(
        "--soak-duration",
        default=None,
        metavar="DURATION",
        help="load duration of a scenario marked soak, e.g. 10m or 8h (others run as written)",
    )
    r.set_defaults(func=cmd_run)  # harness/cli_run.py

    ch = _on_run_dirs(
        sub,
        "check",
        cmd_check,
        "judge run directories offline; write verdict.json; exit 0 valid, 1 anomalies, 2 cannot check",
        "Judge run directories (docs/run-format.md) offline: every checker, one verdict per "
        "scenario, written to its verdict.json. Exit 0 when all are valid, 1 when anomalies were found, "
        "2 when a file is missing or malformed (named with its line), an output cannot be written safely "
        "(verdict.json, report.html or index.html is a link or not a file) or a checker failed: one line "
        "on stderr naming the directory; SOLAR_CHAOS_DEBUG=1 shows the traceback of an unexpected error.",
    )
    ch.add_argument(
        "--json",
        action="store_true",
        help="print the verdict as JSON, strict and ASCII (one line per scenario if several; one that "
        'cannot be judged: "valid": "unknown" and its "error")',
    )
    ch.add_argument("--limit", type=_count, default=20, help="anomalies listed per scenario (default 20)")

    _on_run_dirs(
        sub,
        "report",
        cmd_report,
        "write report.html for run directories (and index.html for a run folder), offline",
        "Write DIR/report.html from a run directory and its verdict.json alone (judging it "
        "first when verdict.json is missing): one self-contained page, nothing fetched. For a run folder "
        "reports/<run-id>/, every scenario's report and the folder's index.html.",
    )

    shrink_cli.add_parser(sub)  # harness/shrink/cli.py

    sc = sub.add_parser("schema", help="print the JSON Schema of scenario files")
    sc.set_defaults(func=cmd_schema)

    v = sub.add_parser("validate", help="check scenario files; exit 2 naming file, line and field")
    v.add_argument("files", nargs="+", help="scenario files or folders of them")
    v.set_defaults(func=cmd_validate)

    c = sub.add_parser(
        "clean",
        help="remove containers, networks, volumes, faultfs mounts, host directories of runs no longer alive",
    )
    c.add_argument("--all", action="store_true", help="also those of runs still alive")
    c.add_argument("--images", action="store_true", help="also outdated images and their compiled sources")
    c.add_argument(
        "--hosts",
        default=None,
        metavar="FILE",
        help="also on the engines of other hosts a hosts file names (tcp://, ssh://, unix://; docs/scale.md)",
    )
    c.set_defaults(func=cmd_clean)

    w = sub.add_parser(
        "swarm",
        help="make the engines a hosts file names one Swarm (init on one, join the rest; docs/scale.md)",
    )
    w.add_argument("hosts", metavar="HOSTS", help="a hosts file (docs/scenarios.md, topology.hosts)")
    w.add_argument(
        "--managers", type=int, default=1, metavar="N", help="how many of them manage it (default 1)"
    )
    w.set_defaults(func=cmd_swarm)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Whatever a message still holds that the terminal's encoding lacks is escaped, not a crash.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, where a reader gone away is handled, not at the interpreter's exit
        return code
    except HarnessError as e:
        say_error(e)
        return 2
    except Terminated:
        print(
            "solar-chaos: stopped by SIGTERM; the run's faults healed, its containers removed",
            file=sys.stderr,
        )
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("solar-chaos: stopped by SIGINT", file=sys.stderr)
        return 128 + signal.SIGINT
    except BrokenPipeError:
        if not _stdout_gone():
            return _unexpected(args)
        return 128 + signal.SIGPIPE  # as a Unix tool that SIGPIPE ended: `check ... | head`
    except Exception:  # a bug, or data no check foresaw: one line and exit 2, not a traceback
        return _unexpected(args)


def _unexpected(args: argparse.Namespace) -> int:
    e = sys.exc_info()[1]
    if debug():
        raise
    say_error(f"{args.command}: unexpected {type(e).__name__}: {e} ({DEBUG_HINT})")
    return 2


def _stdout_gone() -> bool:
    """Whether the reader of stdout went away (a pipe's write end polls as an error then; a socket's
    broken pipe elsewhere is an unexpected error). If so stdout now goes to /dev/null, so that the
    interpreter's last flush has nothing to fail on (exit 120 and a message)."""
    import select

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    poll = select.poll()
    poll.register(fd, select.POLLOUT)
    if not any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0)):
        return False
    os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return True


if __name__ == "__main__":
    sys.exit(main())
