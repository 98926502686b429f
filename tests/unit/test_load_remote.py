"""Remote Locust workers, the parts without Docker (harness/load/remote.py): the load image's place among the
roles, its pins held to pyproject's, its tag following the code it carries; where the master binds and what
each worker connects to; the clock bounds read back for merge.json."""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import dataclass, field

from harness import images as images_mod
from harness.image_builds import LOAD_CODE
from harness.images import Images, Mode
from harness.load.remote import ANY_ADDRESS, clock_bounds, master_addresses
from harness.topology.ports import route_address


def test_the_load_image_is_built_only_when_named_and_pins_what_the_harness_runs() -> None:
    assert "load" in images_mod.ON_DEMAND_ROLES and "load" not in images_mod.DEFAULT_ROLES
    pins = dict(r.split("==") for r in images_mod.load_spec()["load"]["requirements"])
    with open(images_mod.ROOT / "pyproject.toml", "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    assert f"locust=={pins['locust']}" in [d.split("#")[0].strip() for d in deps]  # the master's own Locust
    assert any(d.startswith("msgspec") for d in deps)


def test_the_load_image_tag_follows_the_code_it_carries(tmp_path, monkeypatch) -> None:
    shutil.copytree(images_mod.ROOT / "docker", tmp_path / "docker")
    for name in LOAD_CODE:
        (tmp_path / "harness" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(images_mod.ROOT / "harness" / name, tmp_path / "harness" / name)
    monkeypatch.setattr(images_mod, "ROOT", tmp_path)
    monkeypatch.setattr(images_mod, "DOCKER_DIR", tmp_path / "docker")
    before = Images(Mode.OFFLINE, log=lambda m: None).ref("load")
    assert before.startswith("solar-chaos/load:1-")
    with open(tmp_path / "harness" / "load" / "locustfile.py", "a") as f:
        f.write("# changed\n")
    assert Images(Mode.OFFLINE, log=lambda m: None).ref("load") != before


@dataclass
class FakeEngine:
    name: str
    reach_ip: str
    local: bool = False
    client: object = None
    loaded: set[str] = field(default_factory=set)


def test_the_master_binds_the_one_address_every_engine_is_reached_through() -> None:
    here = route_address("127.0.0.1")
    assert here.startswith("127.")
    assert master_addresses([FakeEngine("standin-1", "127.0.0.1"), FakeEngine("standin-2", "127.0.0.2")]) == (
        here,
        [here, here],
    )
    # this machine's own engine: its worker on the host's network, the master on loopback
    assert master_addresses([FakeEngine("local", "127.0.0.1", local=True)]) == ("127.0.0.1", ["127.0.0.1"])


def test_the_master_binds_every_address_when_the_engines_are_reached_through_several() -> None:
    bind, connect = master_addresses(
        [FakeEngine("local", "127.0.0.1", local=True), FakeEngine("h2", "127.0.0.9")]
    )
    assert connect[0] == "127.0.0.1" and bind in ("127.0.0.1", ANY_ADDRESS)
    if connect[1] != "127.0.0.1":
        assert bind == ANY_ADDRESS


def test_clock_bounds_are_the_round_trips_the_master_wrote(tmp_path) -> None:
    (tmp_path / "clock-0").write_text(json.dumps({"round_trip_s": 0.0012}))
    (tmp_path / "clock-1").write_text("{torn")
    assert clock_bounds(tmp_path, 3) == {"0": 0.0012, "1": None, "2": None}


class FakeFleet:
    def __init__(self, placement, several: bool) -> None:
        self.placement, self.several = placement, several
        self.targets = {e: f"target {e}" for e in (placement.engines if placement else ())}


class FakeSystem:
    def __init__(self, fleet: FakeFleet) -> None:
        self.run = type("Run", (), {"fleet": fleet})()


def test_the_workers_run_where_the_placement_puts_load_nodes_else_here() -> None:
    from harness.load import worker_engines
    from harness.topology.placement import Placement

    placed = Placement(("standin-1", "standin-2"), (("load-1", "standin-2"), ("load-2", "standin-1")))
    assert worker_engines(FakeSystem(FakeFleet(placed, True)), 2) == ["target standin-2", "target standin-1"]
    assert worker_engines(FakeSystem(FakeFleet(placed, True)), 0) == []  # no --load-workers
    unplaced = Placement(("standin-1", "standin-2"), (("agent-1", "standin-2"),))
    assert worker_engines(FakeSystem(FakeFleet(unplaced, True)), 2) == []  # no load node: local subprocesses
    assert worker_engines(FakeSystem(FakeFleet(None, False)), 2) == []  # one engine: as before issue 32
