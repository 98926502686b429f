"""Choosing the implementation of each node (docs/implementations.md): topology.implementations and
implementations_skip validated with file:line errors naming what is allowed, the precedence of a scenario's
choice over --sut, what scenario.json records node by node, the re-run command's words, and planted bugs an
implementation lacks refused before anything runs."""

from __future__ import annotations

import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import implementations
from harness.cli import build_parser
from harness.images import Images, Mode
from harness.implementations import ImplementationError
from harness.paths import ROOT
from harness.runner import _nodes_record, rerun_command, system_config
from harness.scenario import ScenarioError, load_scenario, load_scenarios

LOAD = "load: {rate: 5, duration: 60s}\n"
ALLOWED = "allowed: an implementation: netsync, net-sync-ts"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def only_problem(path: Path) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_scenarios(path)
    assert len(caught.value.problems) == 1, caught.value.problems
    return caught.value.problems[0]


@pytest.mark.parametrize(
    ("body", "line", "expected"),
    [
        (
            "topology:\n  agents: 3\n  implementations:\n    agents: [netsync, rust, netsync]\n",
            5,
            f"topology.implementations.agents.1: got 'rust'; {ALLOWED}",
        ),
        (
            "topology:\n  agents: 3\n  implementations:\n    agents: [netsync, net-sync-ts]\n",
            5,
            "topology.implementations.agents: 2 implementations for the 3 agents; allowed: a list of 3 "
            "(one per agent, agent-1 first) or one name for all: netsync, net-sync-ts",
        ),
        (
            "topology:\n  implementations: {orchestrator: go}\n",
            3,
            f"topology.implementations.orchestrator: got 'go'; {ALLOWED}",
        ),
        (
            "topology:\n  implementations: {agents: 3}\n",
            3,
            "topology.implementations.agents: got 3; allowed: one implementation for every agent (netsync, "
            "net-sync-ts) or a list of one per agent, e.g. [netsync, net-sync-ts, net-sync-ts]",
        ),
        (
            "implementations_skip:\n  rust: no compiler\n",
            3,
            "implementations_skip.rust: 'rust' is no implementation; allowed: netsync, net-sync-ts",
        ),
        (
            'implementations_skip:\n  net-sync-ts: ""\n',
            3,
            "implementations_skip.net-sync-ts: got ''; allowed: the reason, in words (pytest shows it)",
        ),
        (
            "topology:\n  implementations: {projector: net-sync-ts}\n"
            "implementations_skip:\n  net-sync-ts: lacks x\n",
            5,
            "implementations_skip.net-sync-ts: net-sync-ts is skipped, yet topology.implementations."
            "projector names it; allowed: skip an implementation the topology does not name, or name another "
            "there",
        ),
    ],
)
def test_each_mistake_names_its_line_and_what_is_allowed(
    tmp_path: Path, body: str, line: int, expected: str
) -> None:
    path = write(tmp_path, "s", "name: s\n" + body + LOAD)
    assert only_problem(path) == f"{path}:{line}: {expected}"


def test_an_agents_override_that_no_longer_fits_the_list_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s",
        "name: s\ntopology:\n  implementations:\n    agents: [netsync, netsync, netsync]\n" + LOAD,
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenarios(path, {"topology.agents": 4})
    assert "3 implementations for the 4 agents" in caught.value.problems[0]


MIXED = """\
name: mixed
topology:
  agents: 3
  implementations:
    agents: [netsync, net-sync-ts, net-sync-ts]
    projector: net-sync-ts
load: {rate: 5, duration: 60s}
"""


def test_the_scenarios_choice_wins_for_the_nodes_it_names_and_sut_takes_the_rest(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, "mixed", MIXED))
    named = {
        "agent-1": "netsync",
        "agent-2": "net-sync-ts",
        "agent-3": "net-sync-ts",
        "projector": "net-sync-ts",
    }

    assert dict(system_config(s).implementations) == named  # the orchestrator: netsync, by default
    assert dict(system_config(s, sut="net-sync-ts").implementations) == {
        **named,
        "orchestrator": "net-sync-ts",
    }
    everyone = write(
        tmp_path, "one", "name: one\ntopology: {implementations: {agents: net-sync-ts}}\n" + LOAD
    )
    cfg = system_config(load_scenario(everyone), sut="netsync")
    assert dict(cfg.implementations) == {
        "orchestrator": "netsync",
        "projector": "netsync",
        **{f"agent-{i}": "net-sync-ts" for i in (1, 2, 3)},
    }
    assert implementations.image_roles(cfg) == ("netsync", "net-sync-ts")


def test_a_plain_scenario_runs_netsync_alone_unless_sut_says(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, "plain", "name: plain\n" + LOAD))
    assert system_config(s).implementations == ()
    assert implementations.image_roles(system_config(s)) == ("netsync",)
    assert implementations.image_roles(system_config(s, sut="net-sync-ts")) == ("net-sync-ts",)
    assert implementations.image_roles(system_config(s, sut_image="elsewhere/impl:1")) == ()


def test_scenario_json_records_each_nodes_implementation_and_image(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, "mixed", MIXED))
    images = Images(Mode.OFFLINE, log=lambda m: None)
    ts, ns = images.ref("net-sync-ts"), images.ref("netsync")

    nodes = _nodes_record(images, system_config(s))
    assert nodes["agent-1"] == {"implementation": "netsync", "image": ns}
    assert nodes["agent-2"] == {"implementation": "net-sync-ts", "image": ts}
    assert nodes["orchestrator"] == {"implementation": "netsync", "image": ns}
    other = _nodes_record(images, system_config(s, sut_image="elsewhere/impl:1"))
    assert other["orchestrator"] == {
        "implementation": None,
        "image": "elsewhere/impl:1",
    }  # not named: --sut-image
    assert other["projector"] == {"implementation": "net-sync-ts", "image": ts}  # named by the scenario
    assert s.resolved()["topology"]["implementations"]["agents"] == ["netsync", "net-sync-ts", "net-sync-ts"]


def test_the_rerun_command_carries_sut_and_the_cli_reads_it_back() -> None:
    words = shlex.split(rerun_command("scenarios/nats-down.yaml", 7, sut="net-sync-ts", buggify=("x",)))
    assert words[:2] == ["solar-chaos", "run"] and "--sut" in words
    args = build_parser().parse_args(words[1:])
    assert (args.sut, args.sut_image, args.seed, args.buggify) == ("net-sync-ts", None, 7, ["x"])
    pytest_words = rerun_command("scenarios/a.yaml", 1, pytest_id="scenarios/a.yaml::a", sut="net-sync-ts")
    assert pytest_words == "pytest scenarios/a.yaml::a --seed 1 --sut net-sync-ts"
    assert "--sut" not in rerun_command("scenarios/a.yaml", 1)


def test_sut_and_sut_image_are_exclusive_with_a_clear_error() -> None:
    with pytest.raises(ImplementationError, match=r"--sut net-sync-ts and --sut-image x:1 .*give one"):
        implementations.exclusive("net-sync-ts", "x:1")
    implementations.exclusive("net-sync-ts", None)
    implementations.exclusive(None, "x:1")


class LabelledImages:
    """Stands in for Images where only the image labels matter (pure logic)."""

    def __init__(self, labels: dict[str, frozenset[str] | None]) -> None:
        self.labels = labels

    def ref(self, role: str) -> str:
        return f"img/{role}"

    def ensure(self, roles: tuple[str, ...]) -> None:
        pass

    def known_bugs(self, image: str) -> frozenset[str] | None:
        return self.labels[image]


def test_a_planted_bug_an_implementation_in_use_lacks_is_refused_naming_it() -> None:
    images = LabelledImages({"img/net-sync-ts": frozenset({"ack-before-write"}), "other:1": None})
    why = implementations.unknown_bugs(images, {"netsync", "net-sync-ts"}, ("journal-late",))
    assert why is not None and why.startswith("--buggify journal-late: net-sync-ts has no such planted bug")
    assert "its flags: ack-before-write" in why
    assert implementations.unknown_bugs(images, {"netsync", "net-sync-ts"}, ("ack-before-write",)) is None
    assert implementations.unknown_bugs(images, {"netsync"}, ("journal-late",)) is None
    assert implementations.unknown_bugs(images, {"net-sync-ts"}, ()) is None
    # an image of another origin without the label says nothing of its flags: not judged
    assert implementations.unknown_bugs(images, set(), ("journal-late",), sut_image="other:1") is None


def test_skip_applies_only_where_a_node_runs_the_skipped_implementation(tmp_path: Path) -> None:
    s = load_scenario(
        write(tmp_path, "s", "name: s\nimplementations_skip:\n  net-sync-ts: lacks  a flag\n" + LOAD)
    )
    assert implementations.skipped(s, None) is None
    assert implementations.skipped(s, "netsync") is None
    assert implementations.skipped(s, "net-sync-ts") == "not on net-sync-ts: lacks a flag"
    assert s.resolved()["implementations_skip"] == {"net-sync-ts": "lacks  a flag"}  # in scenario.json


def test_pytest_skips_the_scenario_for_that_implementation_only_with_its_reason(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    write(
        folder,
        "s",
        "name: s\nimplementations_skip:\n  net-sync-ts: its runtime cannot take this fault\n" + LOAD,
    )

    def pytest_run(*extra: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "pytest", "-p", "harness.plugin", "-rs", "-q", str(folder), *extra]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)

    skipped = pytest_run("--sut", "net-sync-ts")
    assert (
        "SKIPPED [1]" in skipped.stdout
        and "not on net-sync-ts: its runtime cannot take this fault" in skipped.stdout
    )
    both = pytest_run("--sut", "net-sync-ts", "--sut-image", "x:1")
    assert both.returncode == 4 and "--sut net-sync-ts and --sut-image x:1" in both.stderr
    collected = pytest_run("--collect-only")  # netsync: not skipped (collected only; no engine here)
    assert "1 test collected" in collected.stdout, collected.stdout


def test_run_refuses_a_scenario_that_skips_the_chosen_implementation(tmp_path: Path) -> None:
    path = write(tmp_path, "s", "name: s\nimplementations_skip:\n  net-sync-ts: lacks a flag\n" + LOAD)
    got = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(path), "--sut", "net-sync-ts"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert got.returncode == 2
    assert f"{path}: cannot run here: not on net-sync-ts: lacks a flag" in got.stderr
