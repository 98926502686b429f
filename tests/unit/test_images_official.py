"""The official image set (`--images official`, SOLAR_CHAOS_IMAGES=official, what CI uses):
every role the System runs resolves to an upstream image pinned to an exact version, the
same version the offline set builds, and netsync and the reaper are built FROM the pinned Python base.
No registry answers here, so the engine is a recording fake: these tests check what would
be pulled and built, not that the pulls succeed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from harness import images as images_mod
from harness.build_cache import IMAGE_PYTHON
from harness.errors import ImageError
from harness.images import BUILT_HERE, DEFAULT_ROLES, IMPLEMENTATIONS, RUNTIME_ROLES, Images, Mode
from harness.topology.services import NATS, SURREALDB, TOXIPROXY

# What the System starts: the three services, an implementation's image for each node (netsync unless
# another is chosen), and the reaper Testcontainers starts before the first container (topology/docker.py).
SYSTEM_ROLES = {NATS.role, SURREALDB.role, TOXIPROXY.role, "reaper", *IMPLEMENTATIONS}
PULLED = sorted(SYSTEM_ROLES - set(BUILT_HERE))
EXACT = re.compile(r"^v?\d+\.\d+\.\d+(-[a-z0-9.]+)*$")  # 2.15.2, v3.3.5, 3.11.16-slim-bookworm


def split_ref(ref: str) -> tuple[str, str | None]:
    """repository, tag (None when the reference has none); a registry's port is not a tag."""
    name, _, last = ref.rpartition("/")
    if ":" not in last:
        return ref, None
    repo_last, tag = last.split(":", 1)
    return f"{name}/{repo_last}" if name else repo_last, tag


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOLAR_CHAOS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SOLAR_CHAOS_IMAGES", raising=False)


def official() -> Images:
    return Images(Mode.OFFICIAL, log=lambda m: None)


def test_the_system_runs_exactly_the_runtime_roles() -> None:
    assert SYSTEM_ROLES == set(RUNTIME_ROLES)


@pytest.mark.parametrize("role", PULLED)
def test_each_pulled_role_is_its_pinned_upstream_image(role: str) -> None:
    ref = official().ref(role)
    repo, tag = split_ref(ref)
    assert ref == images_mod.load_spec()[role]["official"]
    assert not repo.startswith("solar-chaos/"), f"{role} resolves to a local image in official mode: {ref}"
    assert tag is not None, f"{role}: {ref} has no tag, so it means latest"
    assert tag != "latest" and EXACT.match(tag), f"{role}: {ref} is not pinned to an exact version"


@pytest.mark.parametrize("role", ["nats", "toxiproxy", "surrealdb"])
def test_official_and_offline_run_the_same_version(role: str) -> None:
    spec = images_mod.load_spec()[role]
    _, tag = split_ref(spec["official"])
    assert tag is not None
    assert tag.split("-")[0].removeprefix("v") == spec["version"].removeprefix("v")


def test_the_reaper_is_ours_in_every_mode_built_from_the_python_base() -> None:
    """Ryuk takes any filter from whoever reaches its port (one `status=running` line removes every
    running container on the engine): officially too the reaper is our image, which accepts only the
    run's own label filter."""
    imgs = official()
    ref = imgs.ref("reaper")
    assert ref.startswith("solar-chaos/reaper:1-"), ref
    assert "ryuk" not in ref
    assert "official" not in images_mod.load_spec()["reaper"]
    # The base is an input of the tag: the official reaper never reuses an offline build.
    assert ref != Images(Mode.OFFLINE, log=lambda m: None).ref("reaper")


def test_the_python_base_is_the_offline_base_at_an_exact_patch() -> None:
    spec = images_mod.load_spec()["base"]
    repo, tag = split_ref(spec["official"])
    assert repo == "python"
    want = re.compile(rf"^{IMAGE_PYTHON[0]}\.{IMAGE_PYTHON[1]}\.\d+-slim-{spec['suite']}$")
    assert tag and want.match(tag), f"{spec['official']}: want python:3.11.<patch>-slim-{spec['suite']}"


def test_the_version_shown_officially_is_the_pinned_tag() -> None:
    imgs = official()
    assert imgs._version("reaper") == "1"
    assert imgs._version("surrealdb") == "v3.3.5"
    assert imgs._version("netsync") == "0.1.0"


def test_netsync_is_built_here_from_the_pinned_python_base() -> None:
    imgs = official()
    ref = imgs.ref("netsync")
    assert ref.startswith("solar-chaos/netsync:0.1.0-")
    assert imgs._base_ref() == images_mod.load_spec()["base"]["official"]
    # The base is an input of the tag: the official netsync never reuses an offline build.
    assert ref != Images(Mode.OFFLINE, log=lambda m: None).ref("netsync")


def test_a_bumped_official_pin_rebuilds_nothing_offline(tmp_path: Path, monkeypatch) -> None:
    spec = images_mod.load_spec()
    before = {r: Images(Mode.OFFLINE, log=lambda m: None).ref(r) for r in images_mod.ROLES}
    for role in images_mod.ROLES:
        if "official" in spec[role]:
            spec[role]["official"] += "-bumped"
    monkeypatch.setattr(images_mod, "load_spec", lambda: spec)
    after = {r: Images(Mode.OFFLINE, log=lambda m: None).ref(r) for r in images_mod.ROLES}
    assert after == before


def test_solar_chaos_images_chooses_the_mode_where_none_is_given(monkeypatch) -> None:
    monkeypatch.setenv("SOLAR_CHAOS_IMAGES", "official")
    assert Images(Mode.AUTO, log=lambda m: None).mode is Mode.OFFICIAL  # no engine asked
    assert Images(Mode.OFFLINE, log=lambda m: None).mode is Mode.OFFLINE  # an explicit mode wins
    monkeypatch.setenv("SOLAR_CHAOS_IMAGES", "offical")
    with pytest.raises(ImageError, match="SOLAR_CHAOS_IMAGES='offical'.*offline, official, auto"):
        Images(Mode.AUTO, log=lambda m: None)


class FakeEngine:
    """Records pulls and builds; holds no image, reaches no registry."""

    def __init__(self) -> None:
        self.pulled: list[str] = []
        self.builds: list[dict[str, Any]] = []
        self.images = self
        self.api = None

    def get(self, ref: str) -> None:
        raise docker.errors.ImageNotFound(f"No such image: {ref}")

    def pull(self, ref: str) -> None:
        self.pulled.append(ref)

    def build(self, path: str, **kw: Any) -> None:
        dockerfile = (Path(path) / "Dockerfile").read_text()
        self.builds.append({**kw, "from": re.findall(r"^FROM (.+)$", dockerfile, re.M)})


def test_ensure_pulls_the_pins_and_builds_netsync_and_the_reaper_from_the_python_base(
    tmp_path: Path, monkeypatch
) -> None:
    fake = FakeEngine()
    monkeypatch.setattr(images_mod.engine, "client", lambda: fake)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "trio-0.35.0-py3-none-any.whl").write_bytes(b"")
    imgs = official()
    monkeypatch.setattr(imgs.builds, "wheels", lambda name, req: wheels)

    refs = imgs.ensure()

    spec = images_mod.load_spec()
    assert sorted(fake.pulled) == sorted(spec[r]["official"] for r in PULLED)
    assert refs == {r: imgs.ref(r) for r in DEFAULT_ROLES}  # net-sync-ts: at a system's first use of it
    built = [r for r in BUILT_HERE if r in DEFAULT_ROLES]
    assert sorted(build["tag"] for build in fake.builds) == sorted(imgs.ref(r) for r in built)
    for build in fake.builds:
        assert build["from"] == ["${BASE}"]
        assert build["buildargs"] == {"BASE": spec["base"]["official"]}
