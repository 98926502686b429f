"""The pytest plugin: options, markers and fixtures shared by tests/ and scenarios/, and
the collector that turns scenarios/*.yaml into test items (one per parameter set)."""

from __future__ import annotations

import asyncio
import html
import os
import time
from pathlib import Path
from typing import Any

import pytest

from harness import implementations, junit
from harness.checkers.verdict import details, headline
from harness.images import Images, Mode
from harness.paths import reports_dir
from harness.scenario import SOAK, Scenario, ScenarioError, load_scenarios
from harness.topology.disks import faultfs_missing

IMAGES_KEY = pytest.StashKey[Images]()
HOSTS_KEY = pytest.StashKey[list[dict[str, Any]]]()  # a --hosts file's hosts, read once


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("solar-chaos")
    group.addoption(
        "--images",
        default=os.environ.get("SOLAR_CHAOS_IMAGES", "auto"),
        choices=[m.value for m in Mode],
        help="offline: built here from package registries; official: upstream images; "
        "auto (default): official when all are present, else offline",
    )
    group.addoption(
        "--seed", type=int, default=None, help="seed for every scenario (default: the file's, else 0)"
    )
    group.addoption("--agents", type=int, default=None, help="override topology.agents of every scenario")
    group.addoption(
        "--sut",
        default=None,
        choices=list(implementations.NAMES),
        help="the implementation built here that every node runs whose implementation the scenario does "
        "not name (topology.implementations); default netsync (docs/implementations.md)",
    )
    group.addoption(
        "--sut-image",
        default=None,
        help="image of another implementation of docs/contract.md to put under test (not with --sut)",
    )
    group.addoption(
        "--buggify",
        action="append",
        default=[],
        metavar="NAME",
        help="start the system under test with this planted bug (repeatable; docs/contract.md, 'Planted "
        "bugs'); refused (skipped in pytest) where an implementation in use lacks it",
    )
    group.addoption(
        "--soak-duration",
        default=None,
        metavar="DURATION",
        help="run the scenarios marked soak (deselected otherwise, unless -m selects them) with this "
        "load duration, e.g. 10m or 8h",
    )
    group.addoption(
        "--load-workers",
        type=int,
        default=0,
        metavar="N",
        help="send each scenario's load with Locust in distributed mode: one master and N worker processes "
        "(containers on the engines where the hosts name the role load or load-K; docs/scale.md)",
    )
    group.addoption(
        "--hosts",
        default=None,
        metavar="FILE",
        help="which engine runs which node: a YAML list of {engine, nodes} (or {hosts: [...]}), in place of "
        "every scenario's topology.hosts (docs/scenarios.md)",
    )
    group.addoption(
        "--keep-running",
        action="store_true",
        help="leave each scenario's system up afterwards, for inspection",
    )
    group.addoption(
        "--shrink",
        default=None,
        metavar="BUDGET",
        help="shrink each failing scenario (not an expected failure, not a soak) to its smallest failing "
        "schedule, all of them within BUDGET, e.g. 20m (solar-chaos shrink; docs/shrink.md)",
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        implementations.exclusive(config.getoption("--sut"), config.getoption("--sut-image"))
    except implementations.ImplementationError as e:
        raise pytest.UsageError(str(e)) from None
    if (hosts := config.getoption("--hosts")) is not None:
        from harness.scenario.hosts import read_hosts_file

        try:
            config.stash[HOSTS_KEY] = read_hosts_file(hosts)
        except ScenarioError as e:
            raise pytest.UsageError(str(e)) from None
    if (budget := config.getoption("--shrink")) is not None:
        from harness.scenario.types import parse_duration

        try:
            parse_duration(budget)
        except ValueError as e:
            raise pytest.UsageError(f"--shrink {budget!r}: {e}") from None
    config.addinivalue_line("markers", "docker: needs a Docker engine and the images (real containers)")
    config.addinivalue_line("markers", "soak: long-running soak scenario")
    config.addinivalue_line(
        "markers",
        "nightly: a scenario (or its efficacy row) past CI's time budget: `make scenarios` runs it, CI "
        "deselects it (-m 'not nightly'), the nightly workflow runs it (docs/operations.md, CI)",
    )


def session_images(config: pytest.Config) -> Images:
    """One image set per session, built or pulled where missing (a no-op when present)."""
    if IMAGES_KEY not in config.stash:
        imgs = Images(config.getoption("--images"))
        imgs.ensure()
        config.stash[IMAGES_KEY] = imgs
    return config.stash[IMAGES_KEY]


@pytest.fixture(scope="session")
def images(request: pytest.FixtureRequest) -> Images:
    return session_images(request.config)


SYSTEM_KEY = pytest.StashKey[Any]()  # the session's SharedSystem


def shared_system(config: pytest.Config, scenario: Scenario) -> Any:
    """One running system per session, reset between scenarios of the same shape and
    brought up anew (the old one torn down) when the shape changes."""
    from harness.runner import system_config
    from harness.topology.system import SharedSystem

    if SYSTEM_KEY not in config.stash:
        config.stash[SYSTEM_KEY] = SharedSystem(session_images(config))
    want = system_config(
        scenario,
        config.getoption("--sut-image"),
        tuple(config.getoption("--buggify")),
        config.getoption("--sut"),
        config.getoption("--load-workers"),
    )
    return config.stash[SYSTEM_KEY].get(want)


def lacking_bugs(config: pytest.Config, scenario: Scenario) -> str | None:
    """Why the planted bugs of --buggify cannot run on this scenario's implementations, or None."""
    from harness.runner import system_config

    buggify = tuple(config.getoption("--buggify"))
    if not buggify:
        return None
    sut_image = config.getoption("--sut-image")
    want = system_config(scenario, sut_image, buggify, config.getoption("--sut"))
    used = set(implementations.image_roles(want))
    return implementations.unknown_bugs(session_images(config), used, buggify, sut_image)


def soak_asked(config: pytest.Config) -> bool:
    """Whether this session runs soaks: --soak-duration given, or a -m expression naming soak."""
    return bool(config.getoption("--soak-duration")) or SOAK in (config.getoption("markexpr") or "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Soak scenarios run for hours: only when asked for (soak_asked). So do other items marked soak, such
    as the efficacy rows whose scenario is a soak."""
    if soak_asked(config):
        return
    soak = [item for item in items if item.get_closest_marker(SOAK) is not None]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [item for item in items if item not in soak]


def pytest_unconfigure(config: pytest.Config) -> None:
    if SYSTEM_KEY in config.stash:
        config.stash[SYSTEM_KEY].close()


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and "scenarios" in file_path.parts:
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Any:
        agents = self.config.getoption("--agents")
        overrides: dict[str, Any] = {"topology.agents": agents} if agents else {}
        origins = {}
        if (hosts := self.config.stash.get(HOSTS_KEY, None)) is not None:
            overrides["topology.hosts"] = hosts
            origins["topology.hosts"] = f"--hosts {self.config.getoption('--hosts')}"
        soak = self.config.getoption("--soak-duration")
        try:
            sets = load_scenarios(self.path, overrides, soak_duration=soak, origins=origins)
        except ScenarioError as e:
            raise self.CollectError(str(e)) from None
        from harness import runner

        for param_id, scenario in sets:
            name = f"{scenario.name}[{param_id}]" if param_id else scenario.name
            item = ScenarioItem.from_parent(self, name=name, scenario=scenario, param_id=param_id)
            item.add_marker(pytest.mark.docker)
            for marker in scenario.markers:
                item.add_marker(getattr(pytest.mark, marker))
            if (why := faultfs_missing(scenario.topology.faultfs_nodes)) is not None:
                item.add_marker(pytest.mark.skip(reason=why))
            if (why := implementations.skipped(scenario, self.config.getoption("--sut"))) is not None:
                item.add_marker(pytest.mark.skip(reason=why))
            if (why := runner.system_config(scenario).away_from_folders()) is not None:
                item.add_marker(pytest.mark.skip(reason=why))  # a fault needs this machine (docs/scale.md)
            if (known := scenario.expected_failure) is not None:
                # strict: a valid verdict fails the test (the harness stopped finding the bug), and so does
                # an invalid one without the anomalies named (runtest raises another exception then).
                reason = f"known bug, found as {', '.join(known.anomalies)}: {' '.join(known.reason.split())}"
                item.add_marker(pytest.mark.xfail(strict=True, raises=ScenarioFailed, reason=reason))
            yield item


class ScenarioFailed(Exception):
    pass


class UnexpectedVerdict(Exception):
    """A parameter set expected to fail (expected_failures) failed without the anomalies it names."""


SHRINK_DEADLINE_KEY = pytest.StashKey[float]()  # time.monotonic() at which --shrink's budget ends


def shrink_item(config: pytest.Config, scenario: Scenario, run_dir: Path) -> str:
    """--shrink: the lines a failing item's message gains. The budget is the session's, started by its
    first failure and spent on failing items in turn, so a nightly job's timeout holds however many fail.
    A soak is not shrunk: each of its candidates would run the soak's whole load."""
    from harness.scenario.types import parse_duration
    from harness.shrink.cli import shrink_failed
    from harness.shrink.search import MIN_RUN_S

    if SOAK in scenario.markers:
        return (
            "not shrunk: a soak's candidates each run its whole load (--soak-duration); "
            f"`solar-chaos shrink {run_dir} --budget ...` shrinks it by hand (docs/shrink.md)"
        )
    budget = parse_duration(config.getoption("--shrink"))
    left = config.stash.setdefault(SHRINK_DEADLINE_KEY, time.monotonic() + budget) - time.monotonic()
    if left < MIN_RUN_S:
        return f"not shrunk: --shrink {config.getoption('--shrink')} was spent on earlier failing items"
    return shrink_failed(run_dir, left)


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, param_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.param_id = param_id
        self.seed: int | None = None
        self.verdict: str | None = None  # the headline, once judged
        self.report: Path | None = None

    def runtest(self) -> None:
        from harness.runner import run_scenario

        cfg = self.config
        keep = cfg.getoption("--keep-running")
        if (why := lacking_bugs(cfg, self.scenario)) is not None:
            pytest.skip(why)  # before a system is brought up with a flag one of its nodes would refuse
        result = asyncio.run(
            run_scenario(
                self.scenario,
                images=session_images(cfg),
                reports=reports_dir(),
                seed=cfg.getoption("--seed"),
                param_id=self.param_id,
                sut_image=cfg.getoption("--sut-image"),
                sut_name=cfg.getoption("--sut"),
                buggify=tuple(cfg.getoption("--buggify")),
                source=self.path.relative_to(cfg.rootpath)
                if self.path.is_relative_to(cfg.rootpath)
                else self.path,
                agents=cfg.getoption("--agents"),
                keep_running=keep,
                sut=None if keep else shared_system(cfg, self.scenario),
                soak_duration=cfg.getoption("--soak-duration"),
                load_workers=cfg.getoption("--load-workers"),
                hosts_file=cfg.getoption("--hosts"),
            )
        )
        self.seed = result.seed
        self.verdict = headline(result.verdict)
        self.report = result.report
        # junitxml carries these as the test case's properties.
        self.user_properties.append((junit.RUN_DIR, str(result.dir)))
        self.user_properties.append((junit.VERDICT, self.verdict))
        if result.report is not None:
            self.user_properties.append((junit.REPORT, str(result.report)))
        if not result.passed:
            shown = "\n".join(f"  {line}" for line in details(result.verdict))
            message = f"{headline(result.verdict)}\n{shown}\nrun directory: {result.dir}"
            known = self.scenario.expected_failure
            found = {a["kind"] for a in result.verdict.get("anomalies", [])}
            missing = set(known.anomalies) - found if known is not None else set()
            if known is not None and (result.verdict.get("valid") is not False or missing):
                expected = ", ".join(known.anomalies)
                missed = ", ".join(sorted(missing)) or "none"
                raise UnexpectedVerdict(f"expected invalid with {expected} (missing: {missed}); {message}")
            if known is None and result.verdict.get("valid") is False and cfg.getoption("--shrink"):
                message += "\n" + shrink_item(cfg, self.scenario, result.dir)
            raise ScenarioFailed(message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        seed = (
            self.seed
            if self.seed is not None
            else self.scenario.resolved(self.config.getoption("--seed"))["seed"]
        )
        from harness.runner import rerun_command

        cfg = self.config
        same = {
            "agents": cfg.getoption("--agents"),
            "sut_image": cfg.getoption("--sut-image"),
            "sut": cfg.getoption("--sut"),
            "buggify": tuple(cfg.getoption("--buggify")),
            "soak_duration": cfg.getoption("--soak-duration") if SOAK in self.scenario.markers else None,
            "load_workers": cfg.getoption("--load-workers"),
            "hosts_file": cfg.getoption("--hosts"),
        }
        file = self.path.relative_to(cfg.rootpath)
        rerun = (
            "re-run it as it ran:\n"
            f"  {rerun_command(file, seed, pytest_id=self.nodeid, **same)}\n"
            f"  {rerun_command(file, seed, param_id=self.param_id, **same)}"
        )
        if isinstance(excinfo.value, ScenarioFailed | UnexpectedVerdict):
            return f"scenario {self.name} failed: {excinfo.value}\n{rerun}"
        return f"{super().repr_failure(excinfo)}\n{rerun}"

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.name}"


# pytest-html (`--html=reports/index.html`): a verdict column, and a link to each scenario's report.


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list[str]) -> None:
    cells.insert(2, "<th>Verdict</th>")


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    cells.insert(2, f"<td>{html.escape(getattr(report, 'scenario_verdict', '') or '')}</td>")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if not isinstance(item, ScenarioItem) or report.when != "call":
        return
    report.scenario_verdict = item.verdict
    html_path = item.config.getoption("htmlpath", None)
    if item.report is None or not html_path:
        return
    from pytest_html import extras

    link = os.path.relpath(item.report, Path(html_path).resolve().parent)
    report.extras = [*getattr(report, "extras", []), extras.url(link, name="report.html")]
