"""topology.hosts in the scenario model, a --hosts file, and the re-run command that keeps it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from harness.runner import rerun_command, system_config
from harness.scenario import Scenario, ScenarioError, json_schema, load_scenarios
from harness.scenario.hosts import read_hosts_file
from harness.topology.placement import Host

LOAD = "load: {rate: 5, duration: 10s}\n"


def scenario(**topology: Any) -> Scenario:
    return Scenario.model_validate(
        {"name": "s", "load": {"rate": 5, "duration": "10s"}, "topology": topology}
    )


def problem(**topology: Any) -> str:
    with pytest.raises(ValidationError) as e:
        scenario(**topology)
    return str(e.value)


def test_absent_hosts_are_an_empty_list_and_every_node_stays_local() -> None:
    s = scenario()
    assert s.topology.hosts == []
    assert s.resolved()["topology"]["hosts"] == []
    assert system_config(s).hosts == ()
    assert not system_config(s).placement().several


def test_hosts_reach_the_system_config() -> None:
    s = scenario(
        agents=4,
        hosts=[
            {"engine": "standin-1", "nodes": ["nats", "surrealdb"]},
            {"engine": "standin-2", "nodes": ["agents"]},
            {"engine": "standin-3", "nodes": ["agents"]},
        ],
    )
    cfg = system_config(s)
    assert cfg.hosts == (
        Host("standin-1", ("nats", "surrealdb")),
        Host("standin-2", ("agents",)),
        Host("standin-3", ("agents",)),
    )
    assert cfg.placement().nodes_on("standin-3") == ["agent-2", "agent-4"]
    assert s.resolved()["topology"]["hosts"][1] == {"engine": "standin-2", "nodes": ["agents"]}


def test_a_host_without_nodes_is_home_only() -> None:
    s = scenario(hosts=[{"engine": "local"}, {"engine": "standin-2", "nodes": ["agents"]}])
    assert system_config(s).placement().nodes_on("local")[-1] == "toxiproxy"


@pytest.mark.parametrize(
    ("topology", "said"),
    [
        ({"hosts": [{"engine": "standin-0"}]}, "standin-1..standin-9"),
        ({"hosts": [{"engine": "tcp://h3"}]}, "needs host:port"),
        ({"hosts": [{"nodes": ["agents"]}]}, "engine"),
        ({"hosts": [{"engine": "local", "node": ["agents"]}]}, "node"),
        ({"hosts": [{"engine": "local", "nodes": "agents"}]}, "nodes"),
        ({"hosts": [{"engine": "local", "nodes": ["agent-5"]}]}, "'agent-5' is not in the topology"),
        ({"hosts": [{"engine": "local", "nodes": ["analytics"]}]}, "topology.analytics: false"),
        ({"hosts": [{"engine": "local", "nodes": ["nats-2"]}]}, "NATS is one server"),
        (
            {"nats": {"nodes": 3}, "hosts": [{"engine": "local", "nodes": ["nats-leader"]}]},
            "resolved when a fault starts",
        ),
        ({"hosts": [{"engine": "local", "nodes": ["postgres"]}]}, "unknown node 'postgres'"),
        (
            {
                "hosts": [
                    {"engine": "local", "nodes": ["surrealdb"]},
                    {"engine": "standin-1", "nodes": ["surrealdb"]},
                ]
            },
            r"surrealdb is named by hosts\[0\]",
        ),
        ({"hosts": [{"engine": "standin-1"}, {"engine": "standin-1"}]}, "engine too"),
        ({"hosts": [{"engine": "local", "nodes": ["load-65"]}]}, "at most 64 load workers"),
        ({"hosts": [{"engine": "local", "nodes": ["load-0"]}]}, "unknown node 'load-0'"),
        (
            {
                "hosts": [
                    {"engine": "local", "nodes": ["load-1"]},
                    {"engine": "standin-1", "nodes": ["load-1"]},
                ]
            },
            r"load-1 is named by hosts\[0\]",
        ),
    ],
)
def test_bad_hosts_are_refused_saying_what_and_where(topology: dict[str, Any], said: str) -> None:
    text = problem(**topology)
    assert re.search(said, text), text


def test_a_bad_host_in_a_file_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\n" + LOAD + "topology:\n  hosts:\n    - engine: local\n    - engine: standin-2\n"
        "      nodes: [agents, agent-4]\n"
    )
    with pytest.raises(ScenarioError) as e:
        load_scenarios(path)
    assert e.value.problems[0].startswith(
        f"{path}:7: topology.hosts.1.nodes.1: 'agent-4' is not in the topology"
    )


def test_the_schema_describes_hosts_and_its_engine_pattern_matches_the_model() -> None:
    schema = json_schema()
    entry = schema["$defs"]["HostEntry"]
    assert entry["required"] == ["engine"] and entry["additionalProperties"] is False
    pattern = re.compile(entry["properties"]["engine"]["pattern"])
    for good in ("local", "standin-3", "ssh://u@h2:22", "tcp://h3:2376", "unix:///run/docker.sock"):
        assert pattern.search(good), good
    for bad in ("standin-0", "tcp://h3", "http://h3:2375", "remote"):
        assert not pattern.search(bad), bad


def write_hosts(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.yaml"
    path.write_text(text)
    return path


def test_a_hosts_file_is_a_list_or_a_mapping_of_hosts(tmp_path: Path) -> None:
    listed = write_hosts(tmp_path, "- engine: standin-1\n- {engine: standin-2, nodes: [agents]}\n")
    expected = [{"engine": "standin-1", "nodes": []}, {"engine": "standin-2", "nodes": ["agents"]}]
    assert read_hosts_file(listed) == expected
    mapped = write_hosts(
        tmp_path, "hosts:\n  - engine: standin-1\n  - {engine: standin-2, nodes: [agents]}\n"
    )
    assert read_hosts_file(mapped) == expected


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("engine: local\n", ":1: (top level): got {'engine': 'local'}; allowed: a list of {engine, nodes}"),
        (
            "hosts:\n  - engine: local\n  - engine: tcp://h3\n",
            ":3: hosts.1.engine: 'tcp://h3': a tcp:// engine",
        ),
        ("- engine: local\n  nodes: [agents, agent-9]\n", ":2: hosts.0.nodes.1: unknown node 'agent-9'"),
        ("- engine: local\n  nodez: [agents]\n", ":2: hosts.0.nodez: "),
        (
            "- {engine: local, nodes: [nats-1]}\n- {engine: standin-2, nodes: [nats-1]}\n",
            ":1: hosts: hosts[1] (standin-2): nats-1 is named by hosts[0]",
        ),
        ("- [local]\n", ":1: hosts.0: "),
    ],
)
def test_a_bad_hosts_file_is_named_with_line_and_field(tmp_path: Path, text: str, said: str) -> None:
    path = write_hosts(tmp_path, text)
    with pytest.raises(ScenarioError) as e:
        read_hosts_file(path)
    assert str(e.value).startswith(f"{path}{said}"), str(e.value)
    assert "\n" not in str(e.value)  # one problem, said once


def test_hosts_from_a_file_replace_the_scenarios_and_its_errors_name_the_file(tmp_path: Path) -> None:
    scen = tmp_path / "s.yaml"
    scen.write_text("name: s\n" + LOAD + "topology:\n  agents: 2\n  hosts: [{engine: local}]\n")
    hosts = read_hosts_file(
        write_hosts(tmp_path, "- engine: standin-1\n- {engine: standin-2, nodes: [agents]}\n")
    )
    [(_, s)] = load_scenarios(scen, {"topology.hosts": hosts}, origins={"topology.hosts": "--hosts h.yaml"})
    assert system_config(s).placement().nodes_on("standin-2") == ["agent-1", "agent-2"]

    hosts = read_hosts_file(write_hosts(tmp_path, "- {engine: local, nodes: [agent-5]}\n"))
    with pytest.raises(ScenarioError) as e:
        load_scenarios(scen, {"topology.hosts": hosts}, origins={"topology.hosts": "--hosts h.yaml"})
    where = f"{scen} (topology.hosts from --hosts h.yaml): topology.hosts.0.nodes.0: "
    assert e.value.problems[0].startswith(where + "'agent-5' is not in the topology")


def test_the_rerun_command_keeps_the_hosts_file() -> None:
    words = rerun_command("scenarios/x.yaml", 7, hosts_file="three engines.yaml")
    assert words == "solar-chaos run scenarios/x.yaml --seed 7 --hosts 'three engines.yaml'"
    assert "--hosts" not in rerun_command("scenarios/x.yaml", 7)


def test_shrink_reads_a_rerun_with_hosts() -> None:
    from harness.shrink.candidate import _rerun_words

    *_, sut = _rerun_words("solar-chaos run scenarios/x.yaml --seed 7 --hosts h.yaml", Path("r"))
    assert sut == ("--hosts", "h.yaml")


def test_pytest_takes_hosts_for_every_scenario_and_refuses_a_bad_file(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "s.yaml").write_text("name: s\n" + LOAD + "topology: {agents: 2}\n")

    def collect(hosts: str) -> subprocess.CompletedProcess[str]:
        path = write_hosts(tmp_path, hosts)
        cmd = [sys.executable, "-m", "pytest", "-p", "harness.plugin", "--collect-only", "-q"]
        env = {**os.environ, "PYTHONPATH": str(root)}
        return subprocess.run(
            [*cmd, "--hosts", str(path), str(folder)], capture_output=True, text=True, cwd=tmp_path, env=env
        )

    good = collect("- engine: local\n- {engine: standin-2, nodes: [agents]}\n")
    assert "1 test collected" in good.stdout, good.stdout + good.stderr
    bad_form = collect("- engine: standin-0\n")
    assert bad_form.returncode == 4 and "hosts.yaml:1: hosts.0.engine: 'standin-0'" in bad_form.stderr
    not_here = collect("- {engine: local, nodes: [agent-3]}\n")  # a node the file's topology lacks
    assert "(topology.hosts from --hosts " in not_here.stdout + not_here.stderr
    assert "'agent-3' is not in the topology" in not_here.stdout + not_here.stderr


def test_load_workers_are_hosts_nodes_by_role_or_name_and_reach_the_placement(tmp_path: Path) -> None:
    s = scenario(hosts=[{"engine": "local"}, {"engine": "standin-1", "nodes": ["load", "load-3"]}])
    assert s.topology.hosts[1].nodes == ["load", "load-3"]
    placed = system_config(s, load_workers=3).placement()
    assert placed.nodes_on("standin-1") == ["load-1", "load-2", "load-3"]
    assert "load-1" not in dict(system_config(s).placement().where)  # no --load-workers: no workers
    path = write_hosts(tmp_path, "- engine: local\n- {engine: standin-2, nodes: [agents, load]}\n")
    assert read_hosts_file(path)[1] == {"engine": "standin-2", "nodes": ["agents", "load"]}


def test_clean_refuses_a_bad_hosts_file_before_it_removes_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness import engine
    from harness.cli import main as cli

    def no_engine(*_: object, **__: object) -> None:
        raise AssertionError("clean reached the engine with a bad hosts file")

    monkeypatch.setattr(engine, "list_runs", no_engine)
    path = write_hosts(tmp_path, "- engine: local\n- engine: tcp://h3\n")
    assert cli(["clean", "--hosts", str(path)]) == 2
    assert f"{path}:2: hosts.1.engine: 'tcp://h3': a tcp:// engine needs host:port" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("- engine: local\n- engine: tcp://h3\n", ":2: hosts.1.engine: 'tcp://h3': a tcp:// engine needs"),
        ("- engine: local\n- engine: standin-2\n", ": standin-2: stand-in engines make a Swarm of their own"),
    ],
)
def test_swarm_refuses_a_bad_hosts_file_and_stand_ins_before_it_reaches_an_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, text: str, said: str
) -> None:
    from harness.cli import main as cli
    from harness.topology import fleet

    def no_engine(*_: object, **__: object) -> None:
        raise AssertionError("swarm reached an engine")

    monkeypatch.setattr(fleet, "target_of", no_engine)
    path = write_hosts(tmp_path, text)
    assert cli(["swarm", str(path)]) == 2
    assert f"{path}{said}" in capsys.readouterr().err
