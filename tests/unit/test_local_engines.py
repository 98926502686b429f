"""Several engines on this machine, the parts without Docker (harness/topology/engines.py): what stands in
for --privileged when the host engine's bounding set lacks a capability (the capabilities to drop, named
from CapBnd), and the engine image's place among the roles."""

from __future__ import annotations

import shutil

from harness import images as images_mod
from harness.images import Images, Mode
from harness.topology.engines import missing_capabilities


def test_missing_capabilities_names_the_bits_absent_from_the_bounding_set() -> None:
    # This machine's dockerd: every capability up to CHECKPOINT_RESTORE (40) but SYS_RESOURCE (24).
    assert missing_capabilities("CapBnd:\t000001fffeffffff\n") == ["SYS_RESOURCE"]
    assert missing_capabilities("CapPrm:\t0\nCapBnd:\t000001ffffffffff\n") == []
    assert missing_capabilities("CapBnd:\t000001fffefffffe\n") == ["CHOWN", "SYS_RESOURCE"]


def test_the_engine_image_is_built_only_when_named_and_tagged_by_its_inputs(tmp_path, monkeypatch) -> None:
    assert "engine" not in images_mod.ROLES and "engine" not in images_mod.DEFAULT_ROLES  # images, doctor
    shutil.copytree(images_mod.ROOT / "docker", tmp_path / "docker")
    monkeypatch.setattr(images_mod, "ROOT", tmp_path)
    monkeypatch.setattr(images_mod, "DOCKER_DIR", tmp_path / "docker")
    before = Images(Mode.OFFLINE, log=lambda m: None).ref("engine")
    assert before.startswith("solar-chaos/engine:20.10.24-")
    with open(tmp_path / "docker" / "engine" / "entrypoint.sh", "a") as f:
        f.write("# changed\n")
    assert Images(Mode.OFFLINE, log=lambda m: None).ref("engine") != before
